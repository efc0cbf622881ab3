using FastNotebooks.Notebooks.Export;
using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Tests.Export;

public class RenderPageTests
{
    static readonly Lazy<string> NoMathJax = new(() => throw new InvalidOperationException("MathJax must not be loaded"));

    [Fact]
    public void Page_without_math_does_not_load_the_math_renderer()
    {
        var page = HtmlExport.RenderPage(TestNotebooks.Make(Cell.Markdown("# Plain\n\nno formulas")), "Plain", NoMathJax);
        Assert.Contains("<h1", page);
        Assert.DoesNotContain("MathJax", page);
    }

    [Fact]
    public void Code_and_outputs_are_escaped_except_html_outputs()
    {
        var cell = Cell.Code("var s = \"<b>\";");
        cell.Outputs.Add(Output.Stream("stdout", "<i>text</i>"));
        cell.Outputs.Add(Output.Display(new Dictionary<string, string> { ["text/html"] = "<table id=\"t\"></table>", ["text/plain"] = "t" }));
        cell.Outputs.Add(Output.Error("Exception", "bad", new[] { "\u001b[31mred<x>\u001b[0m" }));

        var page = HtmlExport.RenderPage(TestNotebooks.Make(cell), "t", NoMathJax);

        Assert.Contains("var s = &quot;&lt;b&gt;&quot;;", page);
        Assert.Contains("&lt;i&gt;text&lt;/i&gt;", page);
        Assert.Contains("<table id=\"t\"></table>", page);
        Assert.Contains("red&lt;x&gt;", page);
        Assert.False(page.Contains('\u001b'), "ANSI escape left in the page");
    }
}
