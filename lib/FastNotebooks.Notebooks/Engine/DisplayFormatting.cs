using System.Reflection;
using Microsoft.DotNet.Interactive.Formatting;
using Plotly.NET;

namespace FastNotebooks.Notebooks.Engine;

/// <summary>
/// Turns values into Jupyter mime bundles through Microsoft.DotNet.Interactive.Formatting, the
/// conventions the .NET Interactive C# kernel used: objects as text/html, strings as text/plain,
/// TorchSharp tensors through their own formatter source, Plotly.NET charts as a div + script with
/// plotly.js inlined once per notebook (the copy embedded in Plotly.NET, so pages work offline).
/// </summary>
public static class DisplayFormatting
{
    /// <summary>The mime type of HTML outputs.</summary>
    public const string Html = "text/html";

    /// <summary>The mime type of plain-text outputs.</summary>
    public const string Plain = "text/plain";

    /// <summary>The mime type of markdown outputs (<see cref="FastNotebooks.Reporting.Markdown"/>).</summary>
    public const string MarkdownMime = "text/markdown";

    const string PlotlyResource = "Plotly.NET.plotly-2.28.0.min.js";
    static readonly object Gate = new();
    static bool _configured;
    static readonly Lazy<string> PlotlyJs = new(LoadPlotlyJs);

    /// <summary>Registers the engine's formatters once per process.</summary>
    public static void Configure()
    {
        lock (Gate)
        {
            if (_configured) return;
            Formatter.DefaultMimeType = Html;
            Formatter.SetPreferredMimeTypesFor(typeof(string), Plain);
            // Plotly.NET ships a formatter source that renders the chart record as a tree; a chart is a picture.
            Formatter.SetPreferredMimeTypesFor(typeof(GenericChart), Html);
            Formatter.Register<GenericChart>((chart, writer) => writer.Write(ChartHtml(chart)), Html);
            Formatter.Register<GenericChart>((chart, writer) => writer.Write("Plotly.NET chart (shown in text/html)"), Plain);
            Formatter.SetPreferredMimeTypesFor(typeof(Reporting.Markdown), MarkdownMime);
            Formatter.Register<Reporting.Markdown>((markdown, writer) => writer.Write(markdown.Text), MarkdownMime);
            Formatter.Register<Reporting.Markdown>((markdown, writer) => writer.Write(markdown.Text), Plain);
            _configured = true;
        }
    }

    /// <summary>
    /// The mime bundle of <paramref name="value"/>: its preferred mime types, plus text/plain so any front
    /// end has something to show.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Bundle(object? value)
    {
        Configure();
        var bundle = new Dictionary<string, string>();
        if (value is null)
        {
            bundle[Plain] = "null";
            return bundle;
        }
        foreach (var mime in Formatter.GetPreferredMimeTypesFor(value.GetType()))
            bundle[mime] = value.ToDisplayString(mime);
        if (!bundle.ContainsKey(Plain)) bundle[Plain] = value.ToDisplayString(Plain);
        return bundle;
    }

    /// <summary>A bundle of one mime type with content the caller already formatted.</summary>
    public static IReadOnlyDictionary<string, string> Bundle(string content, string mimeType) =>
        new Dictionary<string, string> { [mimeType] = content };

    static string ChartHtml(GenericChart chart)
    {
        // The first chart of a notebook carries plotly.js; later ones reuse the global it defines.
        var session = ConsoleRouter.Capture?.Session;
        var includeLibrary = session is null || session.ClaimPlotlyInclusion();
        var div = GenericChart.toChartHTML(chart);
        return includeLibrary ? PlotlyScriptTag() + "\n" + div : div;
    }

    /// <summary>plotly.js (from Plotly.NET's assembly) in a script tag; no network reference.</summary>
    public static string PlotlyScriptTag() =>
        "<script type=\"text/javascript\">/* plotly.js 2.28.0, embedded in Plotly.NET (MIT) */\n" + PlotlyJs.Value + "\n</script>";

    static string LoadPlotlyJs()
    {
        var assembly = typeof(GenericChart).Assembly;
        using var stream = assembly.GetManifestResourceStream(PlotlyResource)
            ?? throw new InvalidOperationException($"Plotly.NET {assembly.GetName().Version} has no embedded resource '{PlotlyResource}'.");
        using var reader = new StreamReader(stream);
        // A literal "</script" inside would end the tag early; escaping the slash is harmless in JS strings.
        return reader.ReadToEnd().Replace("</script", "<\\/script", StringComparison.OrdinalIgnoreCase);
    }
}
