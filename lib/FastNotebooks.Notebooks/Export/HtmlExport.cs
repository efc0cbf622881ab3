using FastNotebooks.Reporting;
using System.Net;
using System.Text;
using Markdig;
using FastNotebooks.Notebooks.Ipynb;
using FastNotebooks.Notebooks.Running;

namespace FastNotebooks.Notebooks.Export;

/// <summary>
/// Exports executed notebooks to self-contained HTML: one page per notebook plus index.html. Markdown
/// goes through Markdig (math kept as TeX for MathJax), outputs are embedded as they are (charts carry
/// their own inlined plotly.js), and MathJax is inlined into every page that has math. Nothing in a page
/// refers to the network: it opens on a machine without one.
/// </summary>
public static class HtmlExport
{
    static readonly MarkdownPipeline Markdown = new MarkdownPipelineBuilder().UseAdvancedExtensions().Build();

    const string Style = """
        body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #222; }
        pre { background: #f6f8fa; padding: .6rem .8rem; overflow-x: auto; border-radius: 4px; }
        .cell { margin: 1rem 0; }
        .code pre.source { border-left: 3px solid #4078c0; }
        .prompt { color: #888; font-family: monospace; font-size: .8rem; }
        .output { margin-left: 1rem; overflow-x: auto; }
        .output pre { background: #fff; border: 1px solid #eee; }
        .stderr pre { background: #fff5f5; }
        .error pre { background: #fff0f0; border-color: #f99; color: #900; }
        table.index td, table.index th { padding: .2rem .8rem; text-align: left; }
        tr.fails td:last-child { color: #a33; } tr.holds td:last-child { color: #262; }
        table.results { border-collapse: collapse; font-size: .85rem; }
        table.results td, table.results th { padding: .15rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
        table.results th { background: #f3f3f3; }
        """;

    /// <summary>Exports <paramref name="inputs"/> (executed notebooks or folders of them) into <paramref name="outputDirectory"/>; returns the pages written, index.html last.</summary>
    public static IReadOnlyList<string> Export(IEnumerable<string> inputs, string outputDirectory)
    {
        var notebooks = Runner.ResolveNotebooks(inputs);
        var loaded = notebooks.Select(path =>
        {
            try { return (Path: path, Notebook: NotebookJson.Load(path)); }
            catch (NotebookFormatException e) { throw new InputException(e.Message); }
        }).ToList();

        Directory.CreateDirectory(outputDirectory);
        var mathJax = new Lazy<string>(MathJaxAsset.Load);
        var written = new List<string>();
        var entries = new List<(string Page, string Title, string Status)>();
        foreach (var (path, notebook) in loaded)
        {
            var title = TitleOf(notebook) ?? Path.GetFileNameWithoutExtension(path);
            var page = Path.GetFileNameWithoutExtension(path) + ".html";
            var target = Path.Combine(outputDirectory, page);
            AtomicFile.WriteAllText(target, RenderPage(notebook, title, mathJax));
            written.Add(target);
            entries.Add((page, title, StatusOf(notebook)));
        }
        var index = Path.Combine(outputDirectory, "index.html");
        AtomicFile.WriteAllText(index, RenderIndex(entries));
        written.Add(index);
        return written;
    }

    /// <summary>One notebook as a complete HTML document.</summary>
    /// <param name="notebook">An executed notebook.</param>
    /// <param name="title">The page title.</param>
    /// <param name="mathJax">The MathJax script, loaded only when the page has math.</param>
    public static string RenderPage(Notebook notebook, string title, Lazy<string> mathJax)
    {
        var body = new StringBuilder();
        foreach (var cell in notebook.Cells)
        {
            switch (cell.CellType)
            {
                case "markdown":
                    body.Append("<div class=\"cell markdown\">").Append(Markdig.Markdown.ToHtml(cell.Source, Markdown)).Append("</div>\n");
                    break;
                case "code":
                    body.Append("<div class=\"cell code\">");
                    body.Append($"<div class=\"prompt\">In [{cell.ExecutionCount?.ToString() ?? " "}]{(cell.Tags.Contains(ParameterInjection.InjectedTag) ? " (injected parameters)" : "")}</div>");
                    body.Append("<pre class=\"source\"><code class=\"language-csharp\">").Append(WebUtility.HtmlEncode(cell.Source)).Append("</code></pre>");
                    foreach (var output in cell.Outputs) body.Append(RenderOutput(output));
                    body.Append("</div>\n");
                    break;
                default:
                    body.Append("<div class=\"cell raw\"><pre>").Append(WebUtility.HtmlEncode(cell.Source)).Append("</pre></div>\n");
                    break;
            }
        }

        var html = body.ToString();
        // Markdig marks math with class="math"; pages without it skip the 2 MB renderer.
        var hasMath = html.Contains("class=\"math\"", StringComparison.Ordinal);
        var head = new StringBuilder()
            .Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
            .Append("<title>").Append(WebUtility.HtmlEncode(title)).Append("</title>\n")
            .Append("<style>").Append(Style).Append("</style>\n");
        if (hasMath)
        {
            // The menu would lazy-load accessibility components from a CDN; without it nothing is fetched.
            head.Append("<script>window.MathJax = { tex: { inlineMath: [['\\\\(', '\\\\)']], displayMath: [['\\\\[', '\\\\]']] }, ")
                .Append("options: { enableMenu: false }, svg: { fontCache: 'global' } };</script>\n")
                .Append("<script>/* MathJax 3.2.2 tex-svg-full.js (Apache-2.0), inlined for offline reading */\n")
                .Append(mathJax.Value).Append("\n</script>\n");
        }
        head.Append("</head>\n<body>\n<p><a href=\"index.html\">← all notebooks</a></p>\n");
        return head + html + "</body>\n</html>\n";
    }

    static string RenderOutput(Output output)
    {
        switch (output.OutputType)
        {
            case "stream":
                var css = output.Name == "stderr" ? "output stderr" : "output stdout";
                return $"<div class=\"{css}\"><pre>{WebUtility.HtmlEncode(output.Text ?? "")}</pre></div>";
            case "error":
                var text = string.Join("\n", output.Traceback.Count > 0 ? output.Traceback : new List<string> { $"{output.Ename}: {output.Evalue}" });
                // Tracebacks from Jupyter kernels carry ANSI colour codes; they mean nothing in HTML.
                text = System.Text.RegularExpressions.Regex.Replace(text, "\u001b\\[[0-9;]*m", "");
                return $"<div class=\"output error\"><pre>{WebUtility.HtmlEncode(text)}</pre></div>";
            default:
                if (output.GetData("text/html") is { } html) return $"<div class=\"output\">{html}</div>";
                if (output.GetData("image/svg+xml") is { } svg) return $"<div class=\"output\">{svg}</div>";
                if (output.GetData("image/png") is { } png) return $"<div class=\"output\"><img src=\"data:image/png;base64,{png.Trim()}\"></div>";
                if (output.GetData("text/markdown") is { } md) return $"<div class=\"output\">{Markdig.Markdown.ToHtml(md, Markdown)}</div>";
                if (output.GetData("text/plain") is { } plain) return $"<div class=\"output\"><pre>{WebUtility.HtmlEncode(plain)}</pre></div>";
                return "";
        }
    }

    static string RenderIndex(IEnumerable<(string Page, string Title, string Status)> entries)
    {
        var rows = string.Concat(entries.Select(e =>
            $"<tr><td><a href=\"{WebUtility.HtmlEncode(e.Page)}\">{WebUtility.HtmlEncode(e.Title)}</a></td><td>{WebUtility.HtmlEncode(e.Page)}</td><td>{WebUtility.HtmlEncode(e.Status)}</td></tr>\n"));
        return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>FastNotebooks</title>\n<style>" + Style + "</style>\n</head>\n<body>\n" +
               "<h1>FastNotebooks</h1>\n" + RenderOverview(RecordedRuns.Overview()) +
               "<h2>Notebooks</h2>\n<table class=\"index\">\n<tr><th>notebook</th><th>file</th><th>status</th></tr>\n" + rows + "</table>\n</body>\n</html>\n";
    }

    /// <summary>The results overview: one row per claim across notebooks, from the records in <c>results/</c>.</summary>
    public static string RenderOverview(IReadOnlyList<OverviewRow> rows)
    {
        if (rows.Count == 0) return "<p>No recorded results (<code>results/</code> is empty).</p>\n";
        static string Cell(string text) => $"<td>{WebUtility.HtmlEncode(text)}</td>";
        var body = string.Concat(rows.Select(r => $"<tr class=\"{(r.Holds ? "holds" : "fails")}\">" + Cell(r.Notebook) + Cell(r.Claim) + Cell(r.Required) +
            Cell(r.Paper) + Cell(r.Quick) + Cell(r.Full) + Cell(r.Verdict) + "</tr>\n"));
        return "<h2>Results: the paper's claims, as recorded</h2>\n<p>From the records in <code>results/</code> (each notebook's last recorded " +
               "<code>quick</code> and <code>full</code> runs; the verdict is the full run's where there is one).</p>\n<table class=\"index\">\n" +
               "<tr><th>notebook</th><th>claim</th><th>required</th><th>paper</th><th>quick</th><th>full</th><th>verdict</th></tr>\n" + body + "</table>\n";
    }

    static string? TitleOf(Notebook notebook)
    {
        foreach (var cell in notebook.Cells.Where(c => c.CellType == "markdown"))
            foreach (var line in cell.Source.Split('\n'))
                if (line.StartsWith("# ", StringComparison.Ordinal)) return line[2..].Trim();
        return null;
    }

    static string StatusOf(Notebook notebook)
    {
        if (notebook.CodeCells.Any(c => c.Outputs.Any(o => o.OutputType == "error"))) return "error";
        return notebook.CodeCells.All(c => c.ExecutionCount is not null || string.IsNullOrWhiteSpace(c.Source)) ? "executed" : "not executed";
    }
}
