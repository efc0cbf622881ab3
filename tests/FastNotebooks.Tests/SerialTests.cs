// The test classes run one after another, not two at a time. TorchSharp 0.107 turns the number in `tensor + 0.5` (and the
// like) into a temporary Scalar and hands libtorch only its raw handle: a garbage collection during that native call, set off
// by another thread's allocations, lets the Scalar's finalizer free it while libtorch reads it (environment.md, "A rare stop
// in long runs"). Classes running side by side are the likeliest such other threads: a full test run failed once this way, in an FMA test
// (`ExternalException: Expected false to be true ... toDouble`).
[assembly: CollectionBehavior(DisableTestParallelization = true)]
