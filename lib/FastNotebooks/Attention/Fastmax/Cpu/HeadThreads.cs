using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using TorchSharp;

namespace FastNotebooks.Attention.Fastmax.Cpu;

/// <summary>
/// Runs groups of whole (batch, head) slices of a kernel on dedicated threads, each with one libtorch intra-op thread, so
/// each thread carries its heads through every op of the kernel on its own. Split inside each op instead (libtorch's OpenMP
/// team for its ops, .NET's pool for the kernels' loops), the two threads hand over at every op, and on two cores that
/// hand-over cost as much as the second core gave (PERF.md, "two threads"). The calling thread waits: its own libtorch ops
/// would start an OpenMP team beside the workers. Which thread runs a group does not change what it computes.
/// </summary>
internal static class HeadThreads
{
    static readonly object Gate = new();
    static Worker[] _workers = [];

    /// <summary>
    /// body(group) for every group in [0, groups) on <paramref name="threads"/> dedicated threads (in turn on the calling thread
    /// when that is one, or while another call holds the threads); each result is returned in its group's place. Grad mode on
    /// the threads is the caller's. Tensors made there belong to no dispose scope.
    /// </summary>
    public static T[] Run<T>(int groups, int threads, Func<int, T> body)
    {
        var results = new T[groups];
        if (threads <= 1 || !Monitor.TryEnter(Gate))
        {
            for (int group = 0; group < groups; group++) results[group] = body(group);
            return results;
        }
        try
        {
            var workers = Workers(Math.Min(threads, groups));
            var job = new Job(groups, workers.Length, torch.is_grad_enabled(), group => results[group] = body(group));
            foreach (var worker in workers) worker.Start(job);
            // Interrupted here (a notebook kernel's interrupt), the caller leaves; the workers finish this job before the next.
            job.Done.Wait();
            job.Failure?.Throw();
            return results;
        }
        finally { Monitor.Exit(Gate); }
    }

    /// <summary>The first <paramref name="count"/> workers, started on first use (under <see cref="Gate"/>).</summary>
    static Worker[] Workers(int count)
    {
        if (_workers.Length < count)
        {
            int intraOp = torch.get_num_threads();
            var more = _workers.ToList();
            try
            {
                while (more.Count < count) more.Add(new Worker());
            }
            finally
            {
                // Each worker set its own intra-op count to 1, which libtorch also takes as the count for threads it has not
                // seen yet; put that back (the workers keep theirs: libtorch reads it once per thread).
                torch.set_num_threads(intraOp);
                _workers = more.ToArray();
            }
        }
        return _workers[..count];
    }

    /// <summary>One call's groups, taken in turn by the workers; <see cref="Done"/> is set when every worker has left it.</summary>
    sealed class Job(int groups, int workers, bool grad, Action<int> body)
    {
        int _next = -1;
        public ExceptionDispatchInfo? Failure;
        public readonly CountdownEvent Done = new(workers);

        public void Run()
        {
            bool before = torch.is_grad_enabled();
            torch.set_grad_enabled(grad);
            try
            {
                for (int group; (group = Interlocked.Increment(ref _next)) < groups;) body(group);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref Failure, ExceptionDispatchInfo.Capture(e), null);
                Interlocked.Exchange(ref _next, groups);   // the others stop taking groups
            }
            finally
            {
                torch.set_grad_enabled(before);
                Done.Signal();
            }
        }
    }

    /// <summary>A background thread with libtorch's intra-op count 1 that runs the jobs it is given, in order.</summary>
    sealed class Worker
    {
        readonly BlockingCollection<Job> _jobs = new();

        public Worker()
        {
            using var ready = new ManualResetEventSlim();
            new Thread(() => Loop(ready)) { IsBackground = true, Name = "Fastmax head group" }.Start();
            ready.Wait();
        }

        void Loop(ManualResetEventSlim ready)
        {
            torch.get_num_threads();      // libtorch sets a thread's count on its first use; after that, set it to 1
            torch.set_num_threads(1);
            ready.Set();
            foreach (var job in _jobs.GetConsumingEnumerable()) job.Run();
        }

        public void Start(Job job) => _jobs.Add(job);
    }
}
