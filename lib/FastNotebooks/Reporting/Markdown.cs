namespace FastNotebooks.Reporting;

/// <summary>
/// Text that a notebook displays as markdown (mime type text/markdown): how a notebook writes its closing summary
/// from the numbers it computed. Math in $…$ is rendered like the markdown cells'.
/// </summary>
public sealed record Markdown(string Text)
{
    public override string ToString() => Text;
}
