using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace FastNotebooks.Notebooks.Kernel;

/// <summary>
/// Puts an interrupt check (<see cref="CellInterrupt.ThrowIfRequested"/>) at the top of every loop body
/// (while, do, for, foreach) of a cell, so <c>while (true) { }</c> can be stopped. The check is inserted on
/// the line the body starts on, so line numbers in errors and stack traces stay those of the cell as typed.
/// Not covered: loops made with goto, unbounded recursion, and long native calls (a TorchSharp op runs to its end).
/// </summary>
public sealed class InterruptRewriter : CSharpSyntaxRewriter
{
    static readonly StatementSyntax Check =
        SyntaxFactory.ParseStatement("global::FastNotebooks.Notebooks.Kernel.CellInterrupt.ThrowIfRequested(); ");

    /// <summary>The cell's source with checks in its loops; the source unchanged when it has none.</summary>
    public static string Rewrite(string code)
    {
        var tree = CSharpSyntaxTree.ParseText(code, CSharpParseOptions.Default.WithKind(SourceCodeKind.Script).WithLanguageVersion(LanguageVersion.Latest));
        var root = tree.GetRoot();
        if (!root.DescendantNodes().Any(IsLoop)) return code;
        return new InterruptRewriter().Visit(root)!.ToFullString();
    }

    static bool IsLoop(SyntaxNode node) => node is WhileStatementSyntax or DoStatementSyntax or ForStatementSyntax or CommonForEachStatementSyntax;

    /// <inheritdoc />
    public override SyntaxNode? Visit(SyntaxNode? node) => base.Visit(node) switch
    {
        // Inner loops are rewritten first (base.Visit), then this loop's body gets its own check.
        WhileStatementSyntax loop => loop.WithStatement(Checked(loop.Statement)),
        DoStatementSyntax loop => loop.WithStatement(Checked(loop.Statement)),
        ForStatementSyntax loop => loop.WithStatement(Checked(loop.Statement)),
        CommonForEachStatementSyntax loop => loop.WithStatement(Checked(loop.Statement)),
        var other => other,
    };

    static StatementSyntax Checked(StatementSyntax body)
    {
        if (body is BlockSyntax block)
        {
            // After the opening brace, before its trailing trivia: same line as the brace.
            var open = block.OpenBraceToken;
            return block.WithOpenBraceToken(open.WithTrailingTrivia(SyntaxFactory.Space))
                .WithStatements(block.Statements.Insert(0, Check.WithTrailingTrivia(open.TrailingTrivia)));
        }
        // A single statement becomes { check; statement } with the statement's own trivia kept around it.
        return SyntaxFactory.Block(Check, body.WithoutLeadingTrivia().WithoutTrailingTrivia())
            .WithLeadingTrivia(body.GetLeadingTrivia())
            .WithTrailingTrivia(body.GetTrailingTrivia());
    }
}
