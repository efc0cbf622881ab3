namespace FastNotebooks.Notebooks.Running;

/// <summary>Bad input from the command line (missing file, not a notebook, unknown parameter, bad value): the CLI prints the message on one line and exits with 2.</summary>
public sealed class InputException(string message) : Exception(message);
