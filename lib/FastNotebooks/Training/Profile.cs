namespace FastNotebooks.Training;

/// <summary>How big a run is: <c>smoke</c> (seconds, CI), <c>quick</c> (minutes, the default), <c>full</c> (the paper's sizes, hours on 2 cores). Profiles change sizes and steps, never the code path.</summary>
public enum Profile { Smoke, Quick, Full }

public static class Profiles
{
    public static Profile Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "smoke" => Profile.Smoke,
        "quick" => Profile.Quick,
        "full" => Profile.Full,
        _ => throw new ArgumentException($"profile must be smoke, quick or full; got '{name}'.", nameof(name)),
    };

    /// <summary>One of three values by profile.</summary>
    public static T Pick<T>(this Profile profile, T smoke, T quick, T full) => profile switch
    {
        Profile.Smoke => smoke,
        Profile.Quick => quick,
        _ => full,
    };
}
