using FastNotebooks.Attention;
using FastNotebooks.Models;
using static TorchSharp.torch;

namespace FastNotebooks.Tests.Models;

public class ModelShapeTests
{
    public static TheoryData<string> Names => new(AttentionRegistry.Names);

    static TransformerConfig Tiny(string attention, int maxTokens) => new(16, 2, 1, 32, attention, 0, maxTokens);

    [Theory]
    [MemberData(nameof(Names))]
    public void Image_classifier_gives_logits_and_attention_maps(string attention)
    {
        using var model = new ImageClassifier(Tiny(attention, 50));
        using var images = rand(3, 1, 28, 28);
        using var logits = model.forward(images);
        Assert.Equal(new long[] { 3, 10 }, logits.shape);
        using var map = model.AttentionMap(images, 0);
        Assert.Equal(new long[] { 3, 2, 50, 50 }, map.shape);
        if (attention == "none")   // the control attends to nothing: its map is all zeros
            Assert.Equal(0f, map.abs().max().item<float>());
        else
            Assert.True((map.sum(-1) - 1).abs().max().item<float>() < 1e-4, "attention rows must sum to one");
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Char_model_gives_next_token_logits(string attention)
    {
        using var model = new CharLanguageModel(Tiny(attention, 12), vocabulary: 7);
        using var ids = randint(0, 7, new long[] { 2, 12 });
        using var logits = model.forward(ids);
        Assert.Equal(new long[] { 2, 12, 7 }, logits.shape);
    }

    [Theory]
    [InlineData("fma")]
    [InlineData("fma-avgpool")]
    public void Char_model_runs_with_fma_on_block_multiples(string attention)
    {
        using var model = new CharLanguageModel(Tiny(attention, 128), vocabulary: 5);
        using var logits = model.forward(randint(0, 5, new long[] { 1, 64 }));
        Assert.Equal(new long[] { 1, 64, 5 }, logits.shape);
    }

    [Theory]
    [InlineData("softmax")]
    [InlineData("fastmax2")]
    [InlineData("linear")]
    [InlineData("fastmax2-learned-scale")]
    public void Causal_char_model_never_looks_ahead(string attention)
    {
        using var model = new CharLanguageModel(Tiny(attention, 16), vocabulary: 9);
        model.eval();
        using var ids = randint(0, 9, new long[] { 1, 16 });
        using var changed = ids.clone();
        changed[0, 10] = (changed[0, 10] + 1) % 9;
        using var before = model.forward(ids);
        using var after = model.forward(changed);
        Assert.True((before.narrow(1, 0, 10) - after.narrow(1, 0, 10)).abs().max().item<float>() < 1e-5);
        Assert.True((before.narrow(1, 10, 1) - after.narrow(1, 10, 1)).abs().max().item<float>() > 1e-5);
    }

    [Fact]
    public void Sampling_continues_a_prompt_with_vocabulary_tokens()
    {
        using var model = new CharLanguageModel(Tiny("fastmax2", 8), vocabulary: 4);
        var sample = model.Sample(new long[] { 1, 2 }, 20, seed: 3);
        Assert.Equal(20, sample.Length);
        Assert.All(sample, t => Assert.InRange(t, 0, 3));
        Assert.Equal(sample, model.Sample(new long[] { 1, 2 }, 20, seed: 3));
    }
}
