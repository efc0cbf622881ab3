using static TorchSharp.torch;

namespace FastNotebooks.Tests.Attention.Fastmax;

/// <summary>An attention's output and its gradients for the loss Σ o ⊙ dO, on fresh leaves of the inputs.</summary>
static class LossGradients
{
    /// <summary>[o, dq, dk, dv].</summary>
    public static Tensor[] Of(Func<Tensor, Tensor, Tensor, Tensor> attention, Tensor q, Tensor k, Tensor v, Tensor dO)
    {
        var (qq, kk, vv) = (q.detach().requires_grad_(), k.detach().requires_grad_(), v.detach().requires_grad_());
        var o = attention(qq, kk, vv);
        var grads = autograd.grad(new[] { (o * dO).sum() }, new[] { qq, kk, vv });
        return new[] { o.detach(), grads[0], grads[1], grads[2] };
    }
}
