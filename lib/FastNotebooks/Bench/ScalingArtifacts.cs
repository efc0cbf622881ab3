using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FastNotebooks.Bench;

/// <summary>Writes a scaling sweep to disk: one CSV per table (points, fits, crossovers, roofline) and the whole result as JSON.</summary>
public static class ScalingArtifacts
{
    /// <summary>Writes points.csv, fits.csv, crossovers.csv, roofline.csv and scaling.json into <paramref name="folder"/> (created if missing); returns their paths.</summary>
    public static IReadOnlyList<string> Save(ScalingResult result, string folder)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (string.IsNullOrWhiteSpace(folder)) throw new ArgumentException("a folder is needed.", nameof(folder));
        Directory.CreateDirectory(folder);
        var written = new List<string>
        {
            WriteCsv(Path.Combine(folder, "points.csv"), result.Points),
            WriteCsv(Path.Combine(folder, "fits.csv"), result.Fits),
            WriteCsv(Path.Combine(folder, "crossovers.csv"), result.Crossovers),
            WriteCsv(Path.Combine(folder, "roofline.csv"), result.Roofline),
        };
        string json = Path.Combine(folder, "scaling.json");
        var options = new JsonSerializerOptions
        {
            WriteIndented = true,
            Converters = { new JsonStringEnumConverter() },
            // A rate over a time too short to resolve is infinite; JSON has no literal for it unless named ones are allowed.
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        };
        File.WriteAllText(json, JsonSerializer.Serialize(result, options));
        written.Add(json);
        return written;
    }

    /// <summary>A header of the record's property names, then one line per row; numbers in the invariant culture, empty for null.</summary>
    static string WriteCsv<T>(string path, IEnumerable<T> rows)
    {
        var properties = typeof(T).GetProperties();
        string Cell(object? value) => value switch
        {
            null => "",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? "",
        };
        var lines = rows.Select(r => string.Join(",", properties.Select(p => Cell(p.GetValue(r)))))
            .Prepend(string.Join(",", properties.Select(p => p.Name)));
        File.WriteAllLines(path, lines);
        return path;
    }
}
