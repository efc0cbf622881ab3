using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using FastNotebooks.Notebooks.Engine;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>Completions for the code before the cursor: the range they replace, in UTF-16 indices, and the candidate names.</summary>
/// <param name="Start">Start of the word being completed.</param>
/// <param name="End">The cursor.</param>
/// <param name="Matches">Candidate names, sorted, without duplicates (overloads appear once).</param>
/// <param name="Kinds">Each match's kind in Jupyter's words (function, property, instance, class, module), for front-end icons.</param>
public sealed record Completions(int Start, int End, IReadOnlyList<string> Matches, IReadOnlyDictionary<string, string> Kinds);

/// <summary>
/// Code completion and inspection from Roslyn's semantic model of the cell being typed, compiled as the next
/// submission of the session (<see cref="ScriptSession.Continuation"/>): earlier cells' variables, types and
/// usings are in scope. After <c>expr.</c> the members of expr's type (extension methods included), after
/// <c>Type.</c> its static members, after <c>Namespace.</c> its types and namespaces, elsewhere every name in scope.
/// </summary>
public static class Completion
{
    /// <summary>Completions at <paramref name="cursor"/> (a UTF-16 index into <paramref name="code"/>).</summary>
    public static Completions Complete(ScriptSession session, string code, int cursor)
    {
        cursor = Math.Clamp(cursor, 0, code.Length);
        var start = cursor;
        while (start > 0 && (char.IsLetterOrDigit(code[start - 1]) || code[start - 1] == '_')) start--;
        var prefix = code[start..cursor];

        var (model, tree) = Compile(session, code);
        IEnumerable<ISymbol> symbols;
        if (start > 0 && code[start - 1] == '.' && tree.GetRoot().FindToken(start - 1).Parent is MemberAccessExpressionSyntax access)
            symbols = Members(model, access.Expression, start);
        else
            symbols = model.LookupSymbols(start).Where(s => s.CanBeReferencedByName);

        var kinds = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var symbol in symbols.Where(s => s.Name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)))
            kinds.TryAdd(symbol.Name, JupyterKind(symbol));
        return new Completions(start, cursor, kinds.Keys.Order(StringComparer.OrdinalIgnoreCase).ToList(), kinds);
    }

    /// <summary>What the name at <paramref name="cursor"/> is: its kind and full signature (all overloads of a method group); null when nothing is there.</summary>
    public static string? Inspect(ScriptSession session, string code, int cursor)
    {
        cursor = Math.Clamp(cursor, 0, code.Length);
        var (model, tree) = Compile(session, code);
        var root = tree.GetRoot();
        // The cursor may sit just after the name (the usual case when pressing Shift+Tab).
        foreach (var position in new[] { cursor, cursor - 1 }.Where(p => p >= 0 && p < Math.Max(code.Length, 1)))
        {
            var token = root.FindToken(position);
            if (!token.IsKind(SyntaxKind.IdentifierToken) || token.Parent is null) continue;
            var info = model.GetSymbolInfo(token.Parent);
            var symbols = info.Symbol is { } s ? new[] { s } : info.CandidateSymbols.ToArray();
            if (symbols.Length == 0 && model.GetDeclaredSymbol(token.Parent) is { } declared) symbols = new[] { declared };
            if (symbols.Length == 0) continue;
            return string.Join("\n", symbols.Select(Describe));
        }
        return null;
    }

    static string Describe(ISymbol symbol)
    {
        var signature = symbol.ToDisplayString(SymbolDisplayFormat.CSharpErrorMessageFormat);
        var type = symbol switch
        {
            ILocalSymbol l => l.Type,
            IFieldSymbol f => f.Type,
            IPropertySymbol p => p.Type,
            IParameterSymbol p => p.Type,
            _ => null,
        };
        var kind = symbol.Kind == SymbolKind.Field && symbol.ContainingType?.IsScriptClass == true ? "variable" : symbol.Kind.ToString().ToLowerInvariant();
        return type is null ? $"{kind} {signature}" : $"{kind} {signature} : {type.ToDisplayString()}";
    }

    static string JupyterKind(ISymbol symbol) => symbol switch
    {
        IMethodSymbol => "function",
        IPropertySymbol or IEventSymbol => "property",
        ITypeSymbol => "class",
        INamespaceSymbol => "module",
        _ => "instance", // locals, fields, script variables, parameters
    };

    static (SemanticModel Model, SyntaxTree Tree) Compile(ScriptSession session, string code)
    {
        var compilation = session.Continuation(code).GetCompilation();
        var tree = compilation.SyntaxTrees.Single();
        return (compilation.GetSemanticModel(tree), tree);
    }

    static IEnumerable<ISymbol> Members(SemanticModel model, ExpressionSyntax expression, int position)
    {
        // `Math.` names a type and `System.` a namespace; `x.` names a value, whose type's instance members apply.
        switch (model.GetSymbolInfo(expression).Symbol)
        {
            case INamespaceSymbol ns:
                return model.LookupNamespacesAndTypes(position, ns);
            case ITypeSymbol type:
                return model.LookupStaticMembers(position, type).Where(s => s.CanBeReferencedByName);
        }
        if (model.GetTypeInfo(expression).Type is { TypeKind: not TypeKind.Error } instanceType)
            return model.LookupSymbols(position, instanceType, includeReducedExtensionMethods: true)
                .Where(s => s.CanBeReferencedByName && !s.IsStatic);
        return Array.Empty<ISymbol>();
    }
}
