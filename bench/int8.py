"""PyTorch computing an int8 bundle as burnchat does (src/kernel/int8.rs), so that its replies
and scores can be the reference of burnchat's.

burnchat multiplies by an int8 matrix in integers: each input row is quantised to integers of
at most `A` in magnitude (symmetric, `sx = max |x| / A`, rounded to nearest, ties to even), the
sums `xq q` are exact, and an output is `bias + f32(Σ) × f32(sx × scale)`. Here every
`nn.Linear` of the model and both matrices of every `nn.GRU` layer do the same, the sums in
float64 (exact for these sizes); the GRU's gates then follow PyTorch's equations in float32.
`emulate(encoder, decoder, matrices)` swaps the modules in place.
"""

import torch
import torch.nn as nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence


def activation_max(k):
    """The largest quantised activation for an input of width k (src/kernel/int8.rs)."""
    return min((2**31 - 1) // (128 * k), 2**15 - 1)


def int8_linear(x, q, scale, bias):
    """`x` [..., k] times the int8 matrix `q` [n, k] (PyTorch's layout) with `scale` [n]."""
    x = x.float()
    k = q.shape[1]
    top = torch.tensor(float(activation_max(k)), dtype=torch.float32)
    rows = x.reshape(-1, k)
    largest = rows.abs().amax(dim=1, keepdim=True)  # [rows, 1]
    sx = largest / top
    inverse = torch.where(largest > 0, top / largest, torch.zeros_like(largest))
    xq = torch.round(rows * inverse).double()  # the f32 product, ties to even
    sums = (xq.double() @ q.double().t()).float()  # exact, then rounded as `as f32`
    y = sums * (sx * scale.float()[None, :])
    if bias is not None:
        y = bias.float()[None, :] + y
    return y.reshape(*x.shape[:-1], q.shape[0])


class Int8Linear(nn.Module):
    def __init__(self, linear, q, scale):
        super().__init__()
        self.q, self.scale, self.bias = q, scale, linear.bias

    def forward(self, x):
        return int8_linear(x, self.q, self.scale, self.bias)


class Int8GRU(nn.Module):
    """`nn.GRU` (eval, batch second, packed or padded input) with int8 products."""

    def __init__(self, gru, matrices, prefix):
        super().__init__()
        self.gru = gru
        self.directions = 2 if gru.bidirectional else 1
        self.hidden_size = gru.hidden_size
        self.matrices = matrices
        self.prefix = prefix

    def cell(self, layer, suffix, x, h):
        """One step of one direction: x [batch, in], h [batch, hidden]."""
        names = [f"{self.prefix}.weight_{kind}_l{layer}{suffix}" for kind in ("ih", "hh")]
        biases = [getattr(self.gru, f"bias_{kind}_l{layer}{suffix}") for kind in ("ih", "hh")]
        gi = int8_linear(x, *self.matrices[names[0]], biases[0])
        gh = int8_linear(h, *self.matrices[names[1]], biases[1])
        i_r, i_z, i_n = gi.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h

    def forward(self, input, hx=None):
        packed = isinstance(input, PackedSequence)
        # Unpacked, the batch is in its own order, as `hx` and the final states are.
        if packed:
            x, lengths = pad_packed_sequence(input)
            enforce_sorted = input.sorted_indices is None
        else:
            x = input
            lengths = torch.full((x.shape[1],), x.shape[0], dtype=torch.long)
        seq, batch, _ = x.shape
        if hx is None:
            hx = x.new_zeros(self.gru.num_layers * self.directions, batch, self.hidden_size)
        finals = []
        for layer in range(self.gru.num_layers):
            outputs = []
            for d, suffix in enumerate(["", "_reverse"][: self.directions]):
                h = hx[layer * self.directions + d]
                out = x.new_zeros(seq, batch, self.hidden_size)
                steps = range(seq) if d == 0 else range(seq - 1, -1, -1)
                for t in steps:
                    live = (t < lengths)[:, None]  # padding leaves the state as it is
                    h_new = self.cell(layer, suffix, x[t], h)
                    h = torch.where(live, h_new, h)
                    out[t] = torch.where(live, h, torch.zeros_like(h))
                outputs.append(out)
                finals.append(h)
            x = torch.cat(outputs, 2)
        hidden = torch.stack(finals)
        if packed:
            return pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted), hidden
        return x, hidden


def emulate(encoder, decoder, matrices):
    """Swaps every product of the tutorial's `encoder` and `decoder` for burnchat's int8 one;
    `matrices` maps a bundle's tensor name to its (q [out, in], scale [out]) tensors."""
    encoder.gru = Int8GRU(encoder.gru, matrices, "encoder.gru")
    decoder.gru = Int8GRU(decoder.gru, matrices, "decoder.gru")
    for name in ("concat", "out"):
        setattr(decoder, name, Int8Linear(getattr(decoder, name), *matrices[f"decoder.{name}.weight"]))
    if getattr(decoder.attn, "attn", None) is not None:
        decoder.attn.attn = Int8Linear(decoder.attn.attn, *matrices["decoder.attn.attn.weight"])
