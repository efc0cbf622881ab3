namespace FastNotebooks.Notebooks.Export;

/// <summary>
/// The offline LaTeX renderer inlined into exported pages: MathJax 3's single-file TeX→SVG build
/// (npm mathjax@3.2.2, es5/tex-svg-full.js, Apache-2.0). SVG output needs no font files, so one script
/// is all a page needs. The build fetches it with npm into a git-ignored cache and copies it next to
/// this assembly (see FastNotebooks.Notebooks.csproj, target FetchMathJax).
/// </summary>
public static class MathJaxAsset
{
    /// <summary>Path of the script relative to the application folder.</summary>
    public const string RelativePath = "mathjax/tex-svg-full.js";

    /// <summary>Environment variable that may point at another copy of tex-svg-full.js.</summary>
    public const string OverrideVariable = "FASTNOTEBOOKS_MATHJAX";

    /// <summary>The script's text; throws with what to do when the build did not provide it.</summary>
    public static string Load()
    {
        var candidates = new[] { Environment.GetEnvironmentVariable(OverrideVariable), Path.Combine(AppContext.BaseDirectory, RelativePath) };
        var path = candidates.FirstOrDefault(p => !string.IsNullOrEmpty(p) && File.Exists(p))
            ?? throw new FileNotFoundException(
                $"MathJax is missing: expected {Path.Combine(AppContext.BaseDirectory, RelativePath)}. " +
                "Build lib/FastNotebooks.Notebooks with npm on PATH (it installs mathjax@3.2.2 into artifacts/cache), " +
                $"or set {OverrideVariable} to a tex-svg-full.js.");
        // Inlined inside <script>: a literal "</script" would end the tag early.
        return File.ReadAllText(path).Replace("</script", "<\\/script", StringComparison.OrdinalIgnoreCase);
    }
}
