using System.Diagnostics;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.Scripting;
using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Engine;

/// <summary>
/// One notebook's C# scripting state: the first cell runs with CSharpScript, each later cell continues
/// from the previous state, so variables, types and usings carry across cells, as in the .NET
/// Interactive C# kernel. Not thread-safe: run one cell at a time.
/// </summary>
public sealed class ScriptSession
{
    /// <summary>Namespaces every cell sees without a using directive.</summary>
    public static readonly IReadOnlyList<string> DefaultImports = new[]
    {
        "System", "System.IO", "System.Linq", "System.Text", "System.Collections.Generic", "System.Threading.Tasks",
        "System.Diagnostics", "TorchSharp", "TorchSharp.torch", "Plotly.NET.CSharp", "Microsoft.DotNet.Interactive.Formatting",
        "FastNotebooks", "FastNotebooks.Notebooks.Scripting",
    };

    // Metadata references are immutable and Roslyn caches what it reads from them, so all sessions of a
    // process share one set: the second notebook compiles much faster than the first.
    static readonly Lazy<(IReadOnlyList<PortableExecutableReference> All, IReadOnlyDictionary<string, PortableExecutableReference> Closure)> References =
        new(BuildReferences);

    readonly ScriptOptions _options;
    readonly NotebookGlobals _globals = new();
    readonly Dictionary<string, int> _cellByPath = new();
    readonly string _baseDirectory;
    readonly string _notebookName;
    ScriptState<object>? _state;
    bool _plotlyIncluded;

    /// <summary>Creates a session whose relative <c>#r</c> paths resolve against <paramref name="baseDirectory"/> (the notebook's folder).</summary>
    /// <param name="baseDirectory">The notebook's folder.</param>
    /// <param name="notebookName">The notebook's file name, used in stack traces.</param>
    public ScriptSession(string baseDirectory, string notebookName = "notebook")
    {
        DisplayFormatting.Configure();
        ConsoleRouter.Install();
        _baseDirectory = Path.GetFullPath(baseDirectory);
        _notebookName = Path.GetFileNameWithoutExtension(notebookName);
        var (all, closure) = References.Value;
        _options = ScriptOptions.Default
            .WithLanguageVersion(LanguageVersion.Latest)
            .WithReferences(all)
            .WithImports(DefaultImports)
            .WithMetadataResolver(new LoadedAssemblyResolver(closure, _baseDirectory))
            .WithSourceResolver(ScriptSourceResolver.Default.WithBaseDirectory(_baseDirectory))
            // Line numbers in exception stack traces come from the debug information.
            .WithEmitDebugInformation(true)
            .WithFileEncoding(System.Text.Encoding.UTF8)
            .WithOptimizationLevel(OptimizationLevel.Debug)
            .WithAllowUnsafe(true);
    }

    /// <summary>
    /// Compiles and runs a trivial script once, so the compiler's own start-up (JIT, metadata) is not
    /// charged to a notebook's first cell, whose time the runner limits.
    /// </summary>
    public static async Task WarmUpAsync()
    {
        var session = new ScriptSession(Path.GetTempPath(), "warm-up");
        await session.ExecuteAsync("display(\"\".Length + 1)", 1);
    }

    /// <summary>How many cells this session has run (the execution counter of the last one).</summary>
    public int ExecutionCount { get; private set; }

    /// <summary>True the first time it is asked: whoever gets true emits plotly.js for this notebook.</summary>
    public bool ClaimPlotlyInclusion()
    {
        if (_plotlyIncluded) return false;
        _plotlyIncluded = true;
        return true;
    }

    /// <summary>
    /// <paramref name="code"/> as the next cell would see it (same options, every earlier cell's variables and
    /// types in scope), compiled but not run: the Jupyter kernel asks its semantic model for completions.
    /// </summary>
    public Script<object> Continuation(string code) =>
        _state is null ? CSharpScript.Create(code, _options, typeof(NotebookGlobals)) : _state.Script.ContinueWith(code, _options);

    /// <summary>Compiles and runs one cell. Errors become an error output and <see cref="CellResult.Error"/>; they are not thrown.</summary>
    /// <param name="code">The cell's source.</param>
    /// <param name="cell">The cell's 1-based position in the notebook, used in error messages.</param>
    /// <param name="cancellationToken">Checked between statements by Roslyn; a hung native call is the runner's timeout to handle.</param>
    /// <param name="observer">Sees each console write and output while the cell runs (see <see cref="CellCapture"/>).</param>
    public async Task<CellResult> ExecuteAsync(string code, int cell, CancellationToken cancellationToken = default, Action<Output>? observer = null)
    {
        var count = ++ExecutionCount;
        var capture = new CellCapture(this, observer);
        CellError? error = null;
        var path = Path.Combine(_baseDirectory, $"{_notebookName}.cell{cell}.csx");
        _cellByPath[path] = cell;
        using (ConsoleRouter.Enter(capture))
        {
            try
            {
                var options = _options.WithFilePath(path);
                // catchException keeps the state of a cell that threw: variables assigned before the throw survive.
                var state = _state is null
                    ? await CSharpScript.Create(code, options, typeof(NotebookGlobals)).RunAsync(_globals, _ => true, cancellationToken)
                    : await _state.ContinueWithAsync(code, options, _ => true, cancellationToken);
                _state = state;
                if (state.Exception is { } thrown) error = ExceptionError(thrown, cell, capture);
                else if (state.ReturnValue is { } value) capture.Add(Output.Display(DisplayFormatting.Bundle(value), count));
            }
            catch (CompilationErrorException e)
            {
                error = CompileError(e, cell, capture);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                // Formatting a result can throw too (a ToString that fails); report it against the cell.
                error = ExceptionError(e, cell, capture);
            }
            await Console.Out.FlushAsync(cancellationToken);
        }
        return new CellResult(capture.Outputs(), count, error);
    }

    CellError CompileError(CompilationErrorException e, int cell, CellCapture capture)
    {
        var errors = e.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).DefaultIfEmpty(e.Diagnostics.First()).ToList();
        var lines = errors.Select(d =>
        {
            var span = d.Location.GetLineSpan();
            var at = d.Location.IsInSource ? $"cell {cell}, line {span.StartLinePosition.Line + 1}, column {span.StartLinePosition.Character + 1}" : $"cell {cell}";
            return $"{at}: error {d.Id}: {d.GetMessage()}";
        }).ToList();
        var first = errors[0];
        int? line = first.Location.IsInSource ? first.Location.GetLineSpan().StartLinePosition.Line + 1 : null;
        capture.Add(Output.Error("CompilationError", lines[0], lines));
        return new CellError(cell, line, "compile", $"error {first.Id}: {first.GetMessage()}");
    }

    CellError ExceptionError(Exception thrown, int cell, CellCapture capture)
    {
        var e = Unwrap(thrown);
        // The innermost frame in notebook code says where it went wrong; it may be an earlier cell's method.
        (int Cell, int Line)? at = null;
        foreach (var frame in new StackTrace(e, fNeedFileInfo: true).GetFrames())
        {
            if (frame.GetFileName() is { } file && _cellByPath.TryGetValue(file, out var c) && frame.GetFileLineNumber() > 0)
            {
                at = (c, frame.GetFileLineNumber());
                break;
            }
        }
        var where = at is { } a ? $"cell {a.Cell}, line {a.Line}" : $"cell {cell}";
        var message = $"{e.GetType().FullName}: {e.Message}";
        var traceback = new List<string> { $"{where}: {message}" };
        traceback.AddRange(e.ToString().Split('\n').Skip(1).Select(l => l.TrimEnd('\r')));
        capture.Add(Output.Error(e.GetType().Name, e.Message, traceback));
        return at is { } b && b.Cell == cell
            ? new CellError(cell, b.Line, "exception", message)
            : new CellError(cell, null, "exception", at is { } o ? $"{message} (raised at cell {o.Cell}, line {o.Line})" : message);
    }

    static Exception Unwrap(Exception e)
    {
        while (true)
        {
            switch (e)
            {
                case TargetInvocationException { InnerException: { } inner }: e = inner; continue;
                case AggregateException { InnerExceptions.Count: 1 } agg: e = agg.InnerExceptions[0]; continue;
                default: return e;
            }
        }
    }

    static (IReadOnlyList<PortableExecutableReference>, IReadOnlyDictionary<string, PortableExecutableReference>) BuildReferences()
    {
        // The framework's own assemblies (facades included: ScriptOptions.Default leaves some unresolved).
        var runtimeDir = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        var framework = Directory.EnumerateFiles(runtimeDir, "*.dll")
            .Where(f => Path.GetFileName(f) is var n && (n.StartsWith("System.", StringComparison.Ordinal) || n is "netstandard.dll" or "mscorlib.dll" or "Microsoft.CSharp.dll")
                        && !n.StartsWith("System.Private.", StringComparison.Ordinal) || Path.GetFileName(f) == "System.Private.CoreLib.dll")
            .Where(IsManagedAssembly)
            .Select(f => MetadataReference.CreateFromFile(f))
            .ToList();

        // The engine's closure: the library, TorchSharp, Plotly.NET, the formatter. Loading them here (by
        // referencing a type of each) makes sure the runtime uses these very files for the notebook too.
        _ = typeof(TorchSharp.torch); _ = typeof(Plotly.NET.GenericChart); _ = typeof(Plotly.NET.CSharp.Chart);
        _ = typeof(Microsoft.DotNet.Interactive.Formatting.Formatter); _ = typeof(NotebookGlobals);
        TryLoad("FastNotebooks");
        var closure = new Dictionary<string, PortableExecutableReference>(StringComparer.OrdinalIgnoreCase);
        foreach (var assembly in AppDomain.CurrentDomain.GetAssemblies())
        {
            if (assembly.IsDynamic || string.IsNullOrEmpty(assembly.Location)) continue;
            if (Path.GetDirectoryName(assembly.Location) == runtimeDir) continue;
            closure[Path.GetFileName(assembly.Location)] = MetadataReference.CreateFromFile(assembly.Location);
        }
        foreach (var file in Directory.EnumerateFiles(AppContext.BaseDirectory, "*.dll"))
            if (!closure.ContainsKey(Path.GetFileName(file)) && IsManagedAssembly(file))
                closure[Path.GetFileName(file)] = MetadataReference.CreateFromFile(file);

        string[] always = { "FastNotebooks.dll", "TorchSharp.dll", "Plotly.NET.dll", "Plotly.NET.CSharp.dll", "FSharp.Core.dll", "DynamicObj.dll",
                            "Giraffe.ViewEngine.dll", "Microsoft.DotNet.Interactive.Formatting.dll", typeof(NotebookGlobals).Assembly.GetName().Name + ".dll" };
        var all = framework.Concat(always.Where(closure.ContainsKey).Select(n => closure[n])).ToList();
        return (all, closure);
    }

    static void TryLoad(string name)
    {
        try { Assembly.Load(name); }
        catch (FileNotFoundException) { /* a host without the library still runs plain C# cells */ }
    }

    static bool IsManagedAssembly(string path)
    {
        try
        {
            AssemblyName.GetAssemblyName(path);
            return true;
        }
        catch (BadImageFormatException) { return false; }
    }
}
