using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Scripting;

namespace FastNotebooks.Notebooks.Engine;

/// <summary>
/// Resolves <c>#r</c> directives so a notebook's first cell can name the built library by a path that
/// works in any front end (<c>#r "../lib/FastNotebooks.Notebooks/bin/Debug/net10.0/FastNotebooks.dll"</c>)
/// while this engine keeps using the copy it already loaded: a reference whose file name is an assembly
/// of the engine's own closure (FastNotebooks.dll, TorchSharp.dll, ...) maps to that file, whatever the
/// directory in the directive, and whether or not that path exists. Two copies of TorchSharp in one
/// process would mean two native backends and tensors that cannot be passed between them.
/// Other references resolve relative to the notebook's folder.
/// </summary>
public sealed class LoadedAssemblyResolver : MetadataReferenceResolver
{
    readonly IReadOnlyDictionary<string, PortableExecutableReference> _byFileName;
    readonly ScriptMetadataResolver _fallback;

    /// <summary>Creates a resolver over <paramref name="known"/> (keyed by file name), falling back to paths relative to <paramref name="baseDirectory"/>.</summary>
    public LoadedAssemblyResolver(IReadOnlyDictionary<string, PortableExecutableReference> known, string baseDirectory)
    {
        _byFileName = known;
        _fallback = ScriptMetadataResolver.Default.WithBaseDirectory(baseDirectory);
    }

    /// <inheritdoc />
    public override ImmutableArray<PortableExecutableReference> ResolveReference(string reference, string? baseFilePath, MetadataReferenceProperties properties)
    {
        var fileName = Path.GetFileName(reference);
        if (!fileName.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)) fileName += ".dll";
        if (_byFileName.TryGetValue(fileName, out var loaded)) return ImmutableArray.Create(loaded);
        return _fallback.ResolveReference(reference, baseFilePath, properties);
    }

    /// <summary>Dependencies the compiler finds missing (FSharp.Core under Plotly.NET, ...) come from the same closure.</summary>
    public override bool ResolveMissingAssemblies => true;

    /// <inheritdoc />
    public override PortableExecutableReference? ResolveMissingAssembly(MetadataReference definition, AssemblyIdentity referenceIdentity) =>
        _byFileName.TryGetValue(referenceIdentity.Name + ".dll", out var loaded) ? loaded : _fallback.ResolveMissingAssembly(definition, referenceIdentity);

    /// <inheritdoc />
    public override bool Equals(object? other) =>
        other is LoadedAssemblyResolver r && ReferenceEquals(r._byFileName, _byFileName) && r._fallback.Equals(_fallback);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_byFileName, _fallback);
}
