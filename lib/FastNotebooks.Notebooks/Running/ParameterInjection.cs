using System.Globalization;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using FastNotebooks.Notebooks.Ipynb;

namespace FastNotebooks.Notebooks.Running;

/// <summary>The C# type of a parameter, taken from its default's declared type or literal.</summary>
public enum ParameterType
{
    /// <summary>int (also long).</summary>
    Int,
    /// <summary>double (also float, decimal).</summary>
    Double,
    /// <summary>bool.</summary>
    Bool,
    /// <summary>string.</summary>
    String,
}

/// <summary>One parameter declared in a notebook's <c>parameters</c> cell.</summary>
/// <param name="Name">Variable name.</param>
/// <param name="Type">Type the command-line value is converted to.</param>
/// <param name="Default">The default's source text.</param>
public sealed record NotebookParameter(string Name, ParameterType Type, string Default);

/// <summary>
/// Papermill-style parameters: a code cell tagged <c>parameters</c> declares defaults
/// (<c>var profile = "quick"; int steps = 200;</c>); values from the command line go into a new cell tagged
/// <c>injected-parameters</c> right after it, as assignments typed by each default's literal type.
/// </summary>
public static class ParameterInjection
{
    /// <summary>Tag of the cell holding defaults.</summary>
    public const string ParametersTag = "parameters";

    /// <summary>Tag of the cell the runner inserts.</summary>
    public const string InjectedTag = "injected-parameters";

    /// <summary>The parameter every notebook declares.</summary>
    public const string ProfileName = "profile";

    /// <summary>Allowed values of <see cref="ProfileName"/>: seconds (CI), minutes (default), the paper's configs.</summary>
    public static readonly IReadOnlyList<string> Profiles = new[] { "smoke", "quick", "full" };

    /// <summary>Splits <c>name=value</c> arguments; throws <see cref="InputException"/> on a malformed one.</summary>
    public static IReadOnlyDictionary<string, string> ParseAssignments(IEnumerable<string> assignments)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var a in assignments)
        {
            var eq = a.IndexOf('=');
            if (eq <= 0) throw new InputException($"-p '{a}': expected name=value");
            var name = a[..eq].Trim();
            if (!SyntaxFacts.IsValidIdentifier(name)) throw new InputException($"-p '{a}': '{name}' is not a C# identifier");
            values[name] = a[(eq + 1)..];
        }
        return values;
    }

    /// <summary>The parameters declared by the cell tagged <c>parameters</c>; empty when there is none.</summary>
    public static IReadOnlyList<NotebookParameter> Declared(Notebook notebook)
    {
        var cell = notebook.Cells.FirstOrDefault(c => c.IsCode && c.Tags.Contains(ParametersTag));
        if (cell is null) return Array.Empty<NotebookParameter>();
        var tree = CSharpSyntaxTree.ParseText(cell.Source, CSharpParseOptions.Default.WithKind(SourceCodeKind.Script));
        var root = (CompilationUnitSyntax)tree.GetRoot();
        var declarations = root.Members.Select(m => m switch
        {
            FieldDeclarationSyntax f => f.Declaration,
            GlobalStatementSyntax { Statement: LocalDeclarationStatementSyntax l } => l.Declaration,
            _ => null,
        }).OfType<VariableDeclarationSyntax>();

        var parameters = new List<NotebookParameter>();
        foreach (var declaration in declarations)
            foreach (var variable in declaration.Variables)
                if (variable.Initializer is { } init && TypeOf(declaration.Type, init.Value) is { } type)
                    parameters.Add(new NotebookParameter(variable.Identifier.Text, type, init.Value.ToString()));
        return parameters;
    }

    /// <summary>
    /// Inserts (or replaces) the <c>injected-parameters</c> cell after the <c>parameters</c> cell. Every
    /// name must be declared there; values must convert to the default's type.
    /// </summary>
    /// <param name="notebook">Changed in place.</param>
    /// <param name="values">Name → command-line text.</param>
    /// <param name="notebookName">Names the notebook in error messages.</param>
    public static void Inject(Notebook notebook, IReadOnlyDictionary<string, string> values, string notebookName)
    {
        var parametersCell = notebook.Cells.FindIndex(c => c.IsCode && c.Tags.Contains(ParametersTag));
        if (parametersCell < 0)
            throw new InputException($"notebook '{notebookName}' has no code cell tagged '{ParametersTag}' (every notebook declares at least `var {ProfileName} = \"quick\";` there)");
        var declared = Declared(notebook).ToDictionary(p => p.Name);
        var lines = new List<string> { "// Parameters injected by the runner." };
        foreach (var (name, text) in values)
        {
            if (name == ProfileName && !declared.ContainsKey(name))
                throw new InputException($"notebook '{notebookName}' does not declare '{ProfileName}' in its parameters cell (every notebook does: `var {ProfileName} = \"quick\";`)");
            if (!declared.TryGetValue(name, out var parameter))
                throw new InputException($"unknown parameter '{name}' for notebook '{notebookName}' (its parameters cell declares: {string.Join(", ", declared.Keys)})");
            if (name == ProfileName && !Profiles.Contains(text))
                throw new InputException($"parameter '{ProfileName}' = '{text}': expected one of {string.Join(", ", Profiles)}");
            lines.Add($"{name} = {Literal(parameter, text, notebookName)};");
        }

        notebook.Cells.RemoveAll(c => c.Tags.Contains(InjectedTag));
        parametersCell = notebook.Cells.FindIndex(c => c.IsCode && c.Tags.Contains(ParametersTag));
        notebook.Cells.Insert(parametersCell + 1, Cell.Code(string.Join("\n", lines), InjectedTag));
    }

    static string Literal(NotebookParameter p, string text, string notebookName)
    {
        string Fail(string what) => throw new InputException($"parameter '{p.Name}' = '{text}' for notebook '{notebookName}': expected {what} (the default is {p.Default})");
        var inv = CultureInfo.InvariantCulture;
        switch (p.Type)
        {
            case ParameterType.Int:
                return long.TryParse(text, NumberStyles.Integer, inv, out var l) ? l.ToString(inv) : Fail("an integer");
            case ParameterType.Double:
                if (!double.TryParse(text, NumberStyles.Float, inv, out var d)) return Fail("a number");
                if (double.IsNaN(d)) return "double.NaN";
                if (double.IsInfinity(d)) return d > 0 ? "double.PositiveInfinity" : "double.NegativeInfinity";
                return d.ToString("R", inv);
            case ParameterType.Bool:
                return bool.TryParse(text, out var b) ? (b ? "true" : "false") : Fail("true or false");
            default:
                return SymbolDisplay.FormatLiteral(text, quote: true);
        }
    }

    static ParameterType? TypeOf(TypeSyntax declared, ExpressionSyntax value)
    {
        if (declared is PredefinedTypeSyntax predefined)
        {
            return predefined.Keyword.Kind() switch
            {
                SyntaxKind.IntKeyword or SyntaxKind.LongKeyword => ParameterType.Int,
                SyntaxKind.DoubleKeyword or SyntaxKind.FloatKeyword or SyntaxKind.DecimalKeyword => ParameterType.Double,
                SyntaxKind.BoolKeyword => ParameterType.Bool,
                SyntaxKind.StringKeyword => ParameterType.String,
                _ => null,
            };
        }
        if (value is PrefixUnaryExpressionSyntax { OperatorToken.RawKind: (int)SyntaxKind.MinusToken } negative) value = negative.Operand;
        return value switch
        {
            LiteralExpressionSyntax { RawKind: (int)SyntaxKind.StringLiteralExpression } => ParameterType.String,
            LiteralExpressionSyntax { RawKind: (int)SyntaxKind.TrueLiteralExpression or (int)SyntaxKind.FalseLiteralExpression } => ParameterType.Bool,
            LiteralExpressionSyntax { RawKind: (int)SyntaxKind.NumericLiteralExpression } n =>
                n.Token.Value is int or long or uint or ulong ? ParameterType.Int : ParameterType.Double,
            _ => null,
        };
    }
}
