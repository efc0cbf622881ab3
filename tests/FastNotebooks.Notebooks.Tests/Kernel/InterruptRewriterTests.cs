using FastNotebooks.Notebooks.Engine;
using FastNotebooks.Notebooks.Kernel;

namespace FastNotebooks.Notebooks.Tests.Kernel;

public class InterruptRewriterTests
{
    const string CheckCall = "CellInterrupt.ThrowIfRequested();";

    static int Count(string text, string what) => (text.Length - text.Replace(what, "").Length) / what.Length;

    [Theory]
    [InlineData("while (true) { }")]
    [InlineData("do { x++; } while (x < 3);")]
    [InlineData("for (var i = 0; i < 3; i++) x++;")]
    [InlineData("foreach (var v in new[] { 1, 2 })\n    x += v;")]
    [InlineData("foreach (var (a, b) in new[] { (1, 2) }) { x += a + b; }")]
    public void Every_loop_body_starts_with_a_check_and_lines_stay_put(string loop)
    {
        var code = "var x = 0;\n" + loop + "\nvar after = 1;";
        var rewritten = InterruptRewriter.Rewrite(code);

        Assert.Equal(1, Count(rewritten, CheckCall));
        Assert.Equal(code.Split('\n').Length, rewritten.Split('\n').Length);
        Assert.Equal("var after = 1;", rewritten.Split('\n')[^1]);
    }

    [Fact]
    public void Nested_loops_get_one_check_each()
    {
        var rewritten = InterruptRewriter.Rewrite("for (var i = 0; i < 2; i++)\n{\n    while (false) { }\n}");
        Assert.Equal(2, Count(rewritten, CheckCall));
    }

    [Fact]
    public void Code_without_loops_is_unchanged()
    {
        const string code = "// a comment\nvar y = new[] { 1, 2 }.Select(v => v * 2).Sum();\ny";
        Assert.Same(code, InterruptRewriter.Rewrite(code));
    }

    [Fact]
    public async Task Rewritten_loops_compute_the_same_and_report_the_typed_line()
    {
        var session = new ScriptSession(TestNotebooks.NewFolder(), "rewrite.ipynb");
        var sum = await session.ExecuteAsync(InterruptRewriter.Rewrite("var s = 0;\nfor (var i = 1; i <= 10; i++) s += i;\nforeach (var v in new[] { 100 }) { s += v; }\ns"), 1);
        Assert.True(sum.Succeeded, sum.Error?.ToString());
        Assert.Equal("155", Assert.Single(sum.Outputs).GetData("text/plain"));

        var thrown = await session.ExecuteAsync(InterruptRewriter.Rewrite("var n = 0;\nwhile (n < 5)\n{\n    n++;\n    if (n == 3) throw new InvalidOperationException(\"three\");\n}"), 2);
        Assert.Equal(5, thrown.Error?.Line);
    }
}
