using System.Collections;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text;

namespace FastNotebooks.Notebooks.Engine;

/// <summary>
/// Sequences of records or anonymous objects as tables, one column per public property, the way a results table
/// reads in a paper (the Formatting package shows them as collapsed trees). Numbers print with four significant
/// digits in the HTML; text/plain gets one ToString line per row.
/// </summary>
public static class TableFormatting
{
    /// <summary>Rows beyond this are summarized as "… n more rows".</summary>
    public const int MaxRows = 500;

    /// <summary>The row properties when <paramref name="value"/> is a table-like sequence; otherwise null.</summary>
    public static PropertyInfo[]? Columns(object value)
    {
        if (value is string or IDictionary || value is not IEnumerable) return null;
        var element = value.GetType().GetInterfaces().Append(value.GetType())
            .Where(t => t.IsGenericType && t.GetGenericTypeDefinition() == typeof(IEnumerable<>))
            .Select(t => t.GetGenericArguments()[0]).FirstOrDefault();
        if (element is null || element.IsPrimitive || element == typeof(string) || element.IsEnum) return null;
        if (element.Namespace?.StartsWith("TorchSharp") == true || element.Namespace?.StartsWith("Plotly") == true) return null;
        var properties = element.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0 && p.Name != "EqualityContract").ToArray();
        return properties.Length == 0 ? null : properties;
    }

    /// <summary>An HTML table of <paramref name="rows"/>, one column per property in <paramref name="columns"/>.</summary>
    public static string Html(IEnumerable rows, PropertyInfo[] columns)
    {
        var html = new StringBuilder("<table class=\"results\"><thead><tr>");
        foreach (var column in columns) html.Append("<th>").Append(WebUtility.HtmlEncode(column.Name)).Append("</th>");
        html.Append("</tr></thead><tbody>");
        int count = 0;
        foreach (var row in rows)
        {
            if (++count > MaxRows) continue;
            html.Append("<tr>");
            foreach (var column in columns)
                html.Append("<td>").Append(WebUtility.HtmlEncode(Cell(row is null ? null : column.GetValue(row)))).Append("</td>");
            html.Append("</tr>");
        }
        html.Append("</tbody></table>");
        if (count > MaxRows) html.Append($"<p>… {count - MaxRows} more rows</p>");
        return html.ToString();
    }

    /// <summary>One ToString line per row.</summary>
    public static string Plain(IEnumerable rows) =>
        string.Join("\n", rows.Cast<object?>().Take(MaxRows).Select(r => r?.ToString() ?? "null"));

    static string Cell(object? value) => value switch
    {
        null => "",
        double d => d.ToString("G4", CultureInfo.InvariantCulture),
        float f => f.ToString("G4", CultureInfo.InvariantCulture),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
