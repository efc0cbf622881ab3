using FastNotebooks.Notebooks.Engine;
using FastNotebooks.Notebooks.Kernel;

namespace FastNotebooks.Notebooks.Tests.Kernel;

public class CompletionTests
{
    static async Task<ScriptSession> SessionWith(string code)
    {
        var session = new ScriptSession(TestNotebooks.NewFolder(), "completion.ipynb");
        var result = await session.ExecuteAsync(code, 1);
        Assert.True(result.Succeeded, result.Error?.ToString());
        return session;
    }

    static Completions At(ScriptSession session, string code) => Completion.Complete(session, code, code.Length);

    [Fact]
    public async Task Members_of_a_variable_from_an_earlier_cell_including_extension_methods()
    {
        var session = await SessionWith("var numbers = new List<int> { 1, 2 };\nrecord Point(int X, int Y);\nvar origin = new Point(0, 0);");

        var list = At(session, "numbers.Ad");
        Assert.Contains("Add", list.Matches);
        Assert.Contains("AddRange", list.Matches);
        Assert.DoesNotContain("Count", list.Matches);
        Assert.Equal(("numbers.".Length, "numbers.Ad".Length), (list.Start, list.End));

        Assert.Contains("Select", At(session, "numbers.Sel").Matches);
        Assert.Equal("function", list.Kinds["Add"]);
        Assert.Equal(new[] { "X" }, At(session, "origin.X").Matches);
    }

    [Fact]
    public async Task Static_members_namespaces_and_names_in_scope()
    {
        var session = await SessionWith("var learningRate = 0.1;");

        Assert.Contains("Sqrt", At(session, "Math.Sq").Matches);
        Assert.Contains("Generic", At(session, "System.Collections.Ge").Matches);
        var inScope = At(session, "var y = learn");
        Assert.Contains("learningRate", inScope.Matches);
        Assert.Equal("instance", inScope.Kinds["learningRate"]);
        Assert.Contains("display", At(session, "disp").Matches);
    }

    [Fact]
    public async Task Inspect_names_the_type_of_a_variable()
    {
        var session = await SessionWith("var learningRate = 0.1;");
        Assert.Equal("variable learningRate : double", Completion.Inspect(session, "learningRate * 2", 4));
        Assert.Null(Completion.Inspect(session, "  ", 1));
    }

    [Theory]
    [InlineData("abc", 2, 2)]
    [InlineData("a😀b", 2, 3)] // the emoji is one code point, two UTF-16 units
    [InlineData("a😀b", 3, 4)]
    public void Cursor_positions_convert_between_code_points_and_utf16(string text, int codePoint, int utf16)
    {
        Assert.Equal(utf16, CodePoints.ToUtf16(text, codePoint));
        Assert.Equal(codePoint, CodePoints.FromUtf16(text, utf16));
    }
}
