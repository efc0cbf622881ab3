using FastNotebooks.Data.Lra;

namespace FastNotebooks.Tests.Data.Lra;

public class ListOpsTests
{
    [Theory]
    [InlineData(20, 100)]
    [InlineData(100, 300)]
    public void Examples_are_in_the_window_distinct_and_labelled_by_the_evaluator(int minLength, int maxLength)
    {
        var examples = new ListOpsGenerator(seed: 5, minLength, maxLength).Generate(200);
        Assert.Equal(200, examples.Count);
        Assert.Equal(examples.Count, examples.Select(e => string.Join(" ", e.Tokens)).Distinct().Count());
        foreach (var example in examples)
        {
            Assert.InRange(example.Tokens.Count, minLength + 1, maxLength - 1);
            Assert.Equal(ListOpsEvaluator.Evaluate(example.Tokens), example.Label);
        }
        Assert.True(examples.Select(e => e.Label).Distinct().Count() >= 5, "labels should spread over the classes");
    }

    [Theory]
    [InlineData("[MAX 2 9 [MIN 4 7 ] 0 ]", 9)]
    [InlineData("[MED 1 2 3 4 ]", 2)]
    [InlineData("[SM 9 9 [MED 5 8 ] ]", 4)]
    [InlineData("[MIN [MAX 1 3 ] [SM 4 7 ] ]", 1)]
    [InlineData("7", 7)]
    public void Evaluator_computes_hand_checked_values(string expression, int value) =>
        Assert.Equal(value, ListOpsEvaluator.Evaluate(expression.Split(' ')));

    [Theory]
    [InlineData("[MAX 2 9")]
    [InlineData("2 ]")]
    [InlineData("[MAX 2 x ]")]
    [InlineData("1 2")]
    public void Evaluator_rejects_malformed_input(string expression) =>
        Assert.Throws<FormatException>(() => ListOpsEvaluator.Evaluate(expression.Split(' ')));

    [Fact]
    public void Nesting_never_exceeds_the_depth_limit()
    {
        foreach (var example in new ListOpsGenerator(seed: 1, 10, 400, maxDepth: 4).Generate(100))
        {
            int depth = 0, deepest = 0;
            foreach (var token in example.Tokens)
            {
                if (token.StartsWith('[')) deepest = Math.Max(deepest, ++depth);
                if (token == "]") depth--;
            }
            Assert.True(deepest <= 3, $"operators nest {deepest} deep with maxDepth 4: {example}");
        }
    }

    [Fact]
    public void Encoding_maps_tokens_to_ids_and_pads()
    {
        var ids = ListOpsEvaluator.Encode("[SM 3 ]".Split(' '), 5);
        Assert.Equal(new long[] { 14, 4, 15, 0, 0 }, ids);
    }
}
