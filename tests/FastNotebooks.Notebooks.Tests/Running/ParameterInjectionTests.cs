using FastNotebooks.Notebooks.Ipynb;
using FastNotebooks.Notebooks.Running;

namespace FastNotebooks.Notebooks.Tests.Running;

public class ParameterInjectionTests
{
    static Notebook WithParameters() => TestNotebooks.Make(
        Cell.Markdown("# t"),
        TestNotebooks.Parameters("int steps = 10;\nvar lr = 1e-3;\nvar plot = true;\nvar name = \"a\";\nvar offset = -2;"),
        Cell.Code("Console.WriteLine(steps);"));

    [Fact]
    public void Declared_parameters_take_the_type_of_their_default()
    {
        var declared = ParameterInjection.Declared(WithParameters()).ToDictionary(p => p.Name, p => p.Type);
        Assert.Equal(new Dictionary<string, ParameterType>
        {
            ["profile"] = ParameterType.String, ["steps"] = ParameterType.Int, ["lr"] = ParameterType.Double,
            ["plot"] = ParameterType.Bool, ["name"] = ParameterType.String, ["offset"] = ParameterType.Int,
        }, declared);
    }

    [Fact]
    public void Injected_cell_follows_the_parameters_cell_with_typed_assignments()
    {
        var notebook = WithParameters();
        ParameterInjection.Inject(notebook, new Dictionary<string, string>
        {
            ["steps"] = "20", ["lr"] = "0.5", ["plot"] = "False", ["name"] = "say \"hi\"", ["profile"] = "smoke",
        }, "t.ipynb");

        var injected = notebook.Cells[2];
        Assert.Equal(new[] { ParameterInjection.InjectedTag }, injected.Tags);
        Assert.Equal("// Parameters injected by the runner.\nsteps = 20;\nlr = 0.5;\nplot = false;\nname = \"say \\\"hi\\\"\";\nprofile = \"smoke\";", injected.Source);
    }

    [Fact]
    public void Injecting_again_replaces_the_previous_injected_cell()
    {
        var notebook = WithParameters();
        ParameterInjection.Inject(notebook, new Dictionary<string, string> { ["steps"] = "1" }, "t.ipynb");
        ParameterInjection.Inject(notebook, new Dictionary<string, string> { ["steps"] = "2" }, "t.ipynb");
        Assert.Single(notebook.Cells, c => c.Tags.Contains(ParameterInjection.InjectedTag));
        Assert.EndsWith("steps = 2;", notebook.Cells[2].Source);
    }

    [Fact]
    public void Unknown_parameter_is_an_input_error_naming_it_and_the_declared_ones()
    {
        var e = Assert.Throws<InputException>(() => ParameterInjection.Inject(WithParameters(), new Dictionary<string, string> { ["stpes"] = "1" }, "t.ipynb"));
        Assert.Equal("unknown parameter 'stpes' for notebook 't.ipynb' (its parameters cell declares: profile, steps, lr, plot, name, offset)", e.Message);
    }

    [Theory]
    [InlineData("steps", "ten", "expected an integer")]
    [InlineData("lr", "fast", "expected a number")]
    [InlineData("plot", "yes", "expected true or false")]
    [InlineData("profile", "huge", "expected one of smoke, quick, full")]
    public void Value_of_the_wrong_type_is_an_input_error(string name, string value, string expected)
    {
        var e = Assert.Throws<InputException>(() => ParameterInjection.Inject(WithParameters(), new Dictionary<string, string> { [name] = value }, "t.ipynb"));
        Assert.Contains($"'{name}'", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Notebook_without_a_parameters_cell_is_an_input_error()
    {
        var e = Assert.Throws<InputException>(() => ParameterInjection.Inject(TestNotebooks.Make(Cell.Code("1")), new Dictionary<string, string> { ["profile"] = "smoke" }, "bare.ipynb"));
        Assert.Contains("'bare.ipynb' has no code cell tagged 'parameters'", e.Message);
    }

    [Fact]
    public void Notebook_whose_parameters_cell_lacks_profile_is_an_input_error()
    {
        var notebook = TestNotebooks.Make(Cell.Code("var steps = 1;", ParameterInjection.ParametersTag));
        var e = Assert.Throws<InputException>(() => ParameterInjection.Inject(notebook, new Dictionary<string, string> { ["profile"] = "smoke" }, "old.ipynb"));
        Assert.Contains("'old.ipynb' does not declare 'profile'", e.Message);
    }

    [Theory]
    [InlineData("novalue")]
    [InlineData("=3")]
    [InlineData("not-an-identifier=3")]
    public void Malformed_assignment_is_an_input_error(string assignment)
    {
        var e = Assert.Throws<InputException>(() => ParameterInjection.ParseAssignments(new[] { assignment }));
        Assert.Contains($"-p '{assignment}'", e.Message);
    }
}
