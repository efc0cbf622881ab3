using FastNotebooks.Notebooks.Ipynb;
using FastNotebooks.Notebooks.Running;

namespace FastNotebooks.Notebooks.Tests.Running;

public class ResolveNotebooksTests
{
    [Fact]
    public void Folder_expands_to_its_notebooks_in_name_order()
    {
        var folder = TestNotebooks.NewFolder();
        foreach (var name in new[] { "10-b.ipynb", "02-a.ipynb", "01-z.ipynb" }) TestNotebooks.Write(TestNotebooks.Make(), name, folder);
        File.WriteAllText(Path.Combine(folder, "notes.txt"), "");

        var resolved = Runner.ResolveNotebooks(new[] { folder }).Select(Path.GetFileName);

        Assert.Equal(new[] { "01-z.ipynb", "02-a.ipynb", "10-b.ipynb" }, resolved);
    }

    [Fact]
    public void Folder_without_notebooks_is_an_input_error()
    {
        var folder = TestNotebooks.NewFolder();
        var e = Assert.Throws<InputException>(() => Runner.ResolveNotebooks(new[] { folder }));
        Assert.Equal($"folder '{folder}' contains no .ipynb notebooks", e.Message);
    }

    [Fact]
    public void Two_notebooks_with_the_same_name_are_an_input_error()
    {
        var a = TestNotebooks.Write(TestNotebooks.Make(), "same.ipynb");
        var b = TestNotebooks.Write(TestNotebooks.Make(), "same.ipynb");
        var e = Assert.Throws<InputException>(() => Runner.ResolveNotebooks(new[] { a, b }));
        Assert.Contains("two notebooks named 'same.ipynb'", e.Message);
    }
}
