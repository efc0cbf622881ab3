using System.Text.RegularExpressions;
using FastNotebooks.Notebooks.Tests.Running;

namespace FastNotebooks.Notebooks.Tests.Export;

[Collection(ExecutedNotebookCollection.Name)]
public class HtmlExportTests(ExecutedNotebookFixture run)
{
    string Page => File.ReadAllText(Path.Combine(run.HtmlFolder, "params.html"));

    [Fact]
    public void Export_writes_a_page_per_notebook_and_an_index()
    {
        Assert.True(run.Export.ExitCode == 0, run.Export.Stderr);
        Assert.Contains("href=\"params.html\"", File.ReadAllText(Path.Combine(run.HtmlFolder, "index.html")));
        Assert.Contains("<title>Parameters and charts</title>", Page);
    }

    [Fact]
    public void Page_contains_the_chart_data_plotly_js_and_the_math_renderer()
    {
        var page = Page;
        Assert.Contains("\"y\":[777001,777002,777003]", page);
        Assert.Contains("plotly.js v2.28.0", page);
        Assert.Contains("MathJax", page);
        Assert.Contains("\\(e^{i\\pi} + 1 = 0\\)", page); // Markdig kept the TeX for MathJax
    }

    [Fact]
    public void Page_refers_to_no_external_script_or_stylesheet()
    {
        var page = Page;
        var external = new Regex(@"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*[""']?(https?:)?//", RegexOptions.IgnoreCase);
        Assert.Empty(external.Matches(page).Select(m => m.Value));
        Assert.DoesNotMatch(new Regex(@"@import\s+(url\()?[""']?(https?:)?//", RegexOptions.IgnoreCase), page);
        // The check itself can fail: a page with a CDN script is caught.
        Assert.Matches(external, "<script src=\"https://cdn.plot.ly/plotly-2.28.0.min.js\"></script>");
    }
}
