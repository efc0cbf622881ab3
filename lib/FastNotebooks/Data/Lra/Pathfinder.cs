namespace FastNotebooks.Data.Lra;

/// <summary>Settings of the Pathfinder generator. Defaults give the 32×32 task; profiles shrink Size and lengths.</summary>
public sealed record PathfinderOptions
{
    public int Size { get; init; } = 32;
    /// <summary>Dashes per path (the published hard split uses 14 on its own scale).</summary>
    public int PathDashes { get; init; } = 9;
    /// <summary>Pixels per dash (published: 2).</summary>
    public int DashLength { get; init; } = 2;
    /// <summary>Distractor paths besides the ones carrying the dots.</summary>
    public int Distractors { get; init; } = 3;
    /// <summary>Largest change of heading per step, in eighths of a turn.</summary>
    public int MaxTurn { get; init; } = 1;
}

/// <summary>A Pathfinder image: pixels [Size·Size] (0 background, 1 path, 2 dot), and whether the dots are joined.</summary>
public sealed record PathfinderExample(int Size, byte[] Pixels, bool Connected, (int Row, int Column) DotA, (int Row, int Column) DotB);

/// <summary>
/// Pathfinder (Linsley et al. 2018; LRA's Pathfinder task): are the two dots joined by one dashed path among distractor
/// paths? Paths are 8-connected walks with a slowly turning heading, drawn as dashes (DashLength pixels on, one off),
/// so consecutive dashes are exactly 2 pixels apart (Chebyshev); different paths are kept at least 3 apart, so "joined"
/// means: reachable by hops of at most 2 pixels — which <see cref="Connected"/> checks by flood fill.
/// </summary>
public sealed class PathfinderGenerator
{
    public const int HopRadius = 2;
    static readonly (int Row, int Column)[] Headings = { (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1) };

    readonly PathfinderOptions _options;
    readonly Random _random;

    public PathfinderGenerator(PathfinderOptions options, int seed)
    {
        if (options.Size < 8) throw new ArgumentException($"Size must be at least 8; got {options.Size}.", nameof(options));
        if (options.PathDashes < 1 || options.DashLength < 1)
            throw new ArgumentException($"PathDashes and DashLength must be positive; got {options.PathDashes}, {options.DashLength}.", nameof(options));
        _options = options;
        _random = new Random(seed);
    }

    /// <summary>Balanced examples: even indices joined, odd ones not.</summary>
    public List<PathfinderExample> Generate(int count) => Enumerable.Range(0, count).Select(i => Example(i % 2 == 0)).ToList();

    public PathfinderExample Example(bool connected)
    {
        for (int attempt = 0; attempt < 10_000; attempt++)
        {
            var owner = new int[_options.Size, _options.Size];   // 0 empty, else path id
            var targets = new List<List<(int Row, int Column)>>();
            bool placed = true;
            int targetCount = connected ? 1 : 2, total = targetCount + _options.Distractors + (connected ? 1 : 0);
            for (int id = 1; id <= total && placed; id++)
            {
                var path = PlacePath(owner, id);
                if (path is null) placed = false;
                else if (id <= targetCount) targets.Add(path);
            }
            if (!placed) continue;

            var pixels = new byte[_options.Size * _options.Size];
            for (int r = 0; r < _options.Size; r++)
                for (int c = 0; c < _options.Size; c++)
                    if (owner[r, c] != 0) pixels[r * _options.Size + c] = 1;
            var dotA = targets[0][0];
            var dotB = connected ? targets[0][^1] : targets[1][^1];
            pixels[dotA.Row * _options.Size + dotA.Column] = 2;
            pixels[dotB.Row * _options.Size + dotB.Column] = 2;
            return new PathfinderExample(_options.Size, pixels, connected, dotA, dotB);
        }
        throw new InvalidOperationException($"could not place {_options.Distractors} distractors on a {_options.Size}² image; use fewer or shorter paths.");
    }

    /// <summary>Draws one dashed path at least HopRadius + 1 away from other paths; null when it does not fit.</summary>
    List<(int Row, int Column)>? PlacePath(int[,] owner, int id)
    {
        int size = _options.Size;
        for (int attempt = 0; attempt < 200; attempt++)
        {
            int row = _random.Next(1, size - 1), column = _random.Next(1, size - 1), heading = _random.Next(8);
            var drawn = new List<(int Row, int Column)>();
            bool fits = true;
            int steps = _options.PathDashes * (_options.DashLength + 1) - 1;
            for (int step = 0; step < steps && fits; step++)
            {
                if (step % (_options.DashLength + 1) != _options.DashLength)
                {
                    if (!FarFromOthers(owner, row, column, id)) fits = false;
                    else drawn.Add((row, column));
                }
                heading = (heading + _random.Next(-_options.MaxTurn, _options.MaxTurn + 1) + 8) % 8;
                row += Headings[heading].Row;
                column += Headings[heading].Column;
                if (step < steps - 1 && (row < 1 || row >= size - 1 || column < 1 || column >= size - 1)) fits = false;
            }
            if (!fits) continue;
            foreach (var (r, c) in drawn) owner[r, c] = id;
            return drawn;
        }
        return null;
    }

    static bool FarFromOthers(int[,] owner, int row, int column, int id)
    {
        int size = owner.GetLength(0);
        for (int r = Math.Max(0, row - HopRadius); r <= Math.Min(size - 1, row + HopRadius); r++)
            for (int c = Math.Max(0, column - HopRadius); c <= Math.Min(size - 1, column + HopRadius); c++)
                if (owner[r, c] != 0 && owner[r, c] != id) return false;
        return true;
    }

    /// <summary>Flood fill over lit pixels with hops of at most <see cref="HopRadius"/>: are the two dots joined?</summary>
    public static bool Connected(PathfinderExample example)
    {
        int size = example.Size;
        var seen = new bool[size, size];
        var queue = new Queue<(int Row, int Column)>();
        queue.Enqueue(example.DotA);
        seen[example.DotA.Row, example.DotA.Column] = true;
        while (queue.Count > 0)
        {
            var (row, column) = queue.Dequeue();
            if ((row, column) == example.DotB) return true;
            for (int r = Math.Max(0, row - HopRadius); r <= Math.Min(size - 1, row + HopRadius); r++)
                for (int c = Math.Max(0, column - HopRadius); c <= Math.Min(size - 1, column + HopRadius); c++)
                    if (!seen[r, c] && example.Pixels[r * size + c] != 0)
                    {
                        seen[r, c] = true;
                        queue.Enqueue((r, c));
                    }
        }
        return false;
    }
}
