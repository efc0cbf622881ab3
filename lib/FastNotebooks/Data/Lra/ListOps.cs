namespace FastNotebooks.Data.Lra;

/// <summary>One ListOps example: the token sequence and its value (the class, 0–9).</summary>
public sealed record ListOpsExample(IReadOnlyList<string> Tokens, int Label)
{
    public override string ToString() => string.Join(" ", Tokens) + " = " + Label;
}

/// <summary>
/// ListOps (Nangia &amp; Bowman 2018, as generated for Long Range Arena): nested lists of the operators MIN, MAX,
/// MED (median, rounded down) and SM (sum mod 10) over digits 0–9, e.g. <c>[MAX 2 9 [MIN 4 7 ] 0 ]</c> = 9.
/// Rules of the published generator: from the root (depth 1), while depth &lt; MaxDepth a node is an operator with
/// probability 0.25 and otherwise a digit; an operator takes 2..MaxArgs children; a digit is one token and an
/// operator two ("[OP" and "]") plus its children. Examples are rejection-sampled to MinLength &lt; length &lt;
/// MaxLength and de-duplicated. LRA uses MaxDepth 10, MaxArgs 10, lengths 500–2000.
/// </summary>
public sealed class ListOpsGenerator
{
    public const double OperatorProbability = 0.25;
    public static readonly string[] Operators = { "[MIN", "[MAX", "[MED", "[SM" };
    public const string Close = "]";

    readonly Random _random;

    public ListOpsGenerator(int seed, int minLength = 500, int maxLength = 2000, int maxDepth = 10, int maxArgs = 10)
    {
        if (minLength < 0 || maxLength <= minLength + 1)
            throw new ArgumentException($"need 0 ≤ minLength < maxLength − 1; got minLength {minLength}, maxLength {maxLength}.", nameof(maxLength));
        if (maxDepth < 2) throw new ArgumentException($"maxDepth must be at least 2; got {maxDepth}.", nameof(maxDepth));
        if (maxArgs < 2) throw new ArgumentException($"maxArgs must be at least 2; got {maxArgs}.", nameof(maxArgs));
        _random = new Random(seed);
        (MinLength, MaxLength, MaxDepth, MaxArgs) = (minLength, maxLength, maxDepth, maxArgs);
    }

    public int MinLength { get; }
    public int MaxLength { get; }
    public int MaxDepth { get; }
    public int MaxArgs { get; }

    /// <summary><paramref name="count"/> distinct examples with lengths strictly inside the window.</summary>
    public List<ListOpsExample> Generate(int count, int maxAttempts = 10_000_000)
    {
        var seen = new HashSet<string>();
        var examples = new List<ListOpsExample>(count);
        for (int attempt = 0; examples.Count < count; attempt++)
        {
            if (attempt >= maxAttempts)
                throw new InvalidOperationException($"only {examples.Count} of {count} ListOps examples in {maxAttempts} attempts; widen the length window ({MinLength}, {MaxLength}).");
            var tokens = new List<string>();
            int value = Node(depth: 1, tokens);
            if (tokens.Count <= MinLength || tokens.Count >= MaxLength) continue;
            if (seen.Add(string.Join(" ", tokens))) examples.Add(new ListOpsExample(tokens, value));
        }
        return examples;
    }

    /// <summary>Writes one subtree's tokens and returns its value.</summary>
    int Node(int depth, List<string> tokens)
    {
        bool isOperator = depth < MaxDepth && _random.NextDouble() <= OperatorProbability;
        if (!isOperator)
        {
            int digit = _random.Next(10);
            tokens.Add(digit.ToString());
            return digit;
        }
        int opening = tokens.Count;
        tokens.Add("");                                   // filled in once the operator is drawn, after the children
        int arity = _random.Next(2, MaxArgs + 1);
        var values = new List<int>(arity);
        for (int c = 0; c < arity; c++) values.Add(Node(depth + 1, tokens));
        var op = Operators[_random.Next(Operators.Length)];
        tokens[opening] = op;
        tokens.Add(Close);
        return Apply(op, values);
    }

    /// <summary>The value of one operator over its children's values.</summary>
    public static int Apply(string op, IReadOnlyList<int> values) => op switch
    {
        "[MIN" => values.Min(),
        "[MAX" => values.Max(),
        "[SM" => values.Sum() % 10,
        "[MED" => Median(values),
        _ => throw new ArgumentException($"unknown ListOps operator '{op}'.", nameof(op)),
    };

    static int Median(IReadOnlyList<int> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;   // floor, as int(np.median)
    }
}

/// <summary>An independent evaluator of ListOps token sequences (a stack machine): the labels' reference.</summary>
public static class ListOpsEvaluator
{
    public static int Evaluate(IReadOnlyList<string> tokens)
    {
        var stack = new Stack<(string Op, List<int> Values)>();
        int? result = null;
        foreach (var token in tokens)
        {
            if (ListOpsGenerator.Operators.Contains(token)) stack.Push((token, new List<int>()));
            else if (token == ListOpsGenerator.Close)
            {
                if (stack.Count == 0) throw new FormatException("']' without an open operator.");
                var (op, values) = stack.Pop();
                Emit(ListOpsGenerator.Apply(op, values));
            }
            else if (token.Length == 1 && char.IsAsciiDigit(token[0])) Emit(token[0] - '0');
            else throw new FormatException($"unknown ListOps token '{token}'.");
        }
        if (stack.Count != 0 || result is null) throw new FormatException("unbalanced ListOps expression.");
        return result.Value;

        void Emit(int value)
        {
            if (stack.Count > 0) stack.Peek().Values.Add(value);
            else if (result is null) result = value;
            else throw new FormatException("more than one top-level ListOps expression.");
        }
    }

    /// <summary>Token ids: 0 padding, 1–10 digits, 11–14 operators, 15 ']'.</summary>
    public static readonly IReadOnlyList<string> Vocabulary =
        new[] { "<pad>" }.Concat(Enumerable.Range(0, 10).Select(d => d.ToString())).Concat(ListOpsGenerator.Operators).Append(ListOpsGenerator.Close).ToArray();

    public static long[] Encode(IReadOnlyList<string> tokens, int length)
    {
        if (tokens.Count > length) throw new ArgumentException($"sequence of {tokens.Count} tokens does not fit length {length}.", nameof(length));
        var ids = new long[length];
        for (int t = 0; t < tokens.Count; t++)
        {
            int id = Array.IndexOf((string[])Vocabulary, tokens[t]);
            if (id < 0) throw new FormatException($"unknown ListOps token '{tokens[t]}'.");
            ids[t] = id;
        }
        return ids;
    }
}
