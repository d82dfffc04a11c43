"""Golden loss for ReferenceGpt64Test, computed the way Hugging Face's GPT2LMHeadModel does it.

A second, vectorised implementation in numpy with HF's conventions (Conv1D weights [in, out],
q|k|v split on the last axis, heads as a reshape to [B, T, nh, hs]), so that a slip in the Java
reference's indexing would show as a different loss. Parameters and tokens come from closed-form
formulas that the Java test reproduces. Run: python3 gpt2_golden_loss.py
"""
import numpy as np

L, C, NH, MAXT, V = 2, 12, 3, 6, 30
VP = (V + 127) // 128 * 128
B, T = 2, 6
HS = C // NH


def param(offset, n):
    k = np.arange(offset, offset + n, dtype=np.float64)
    return 0.25 * np.sin(0.001 * k * k + 1.3 * k + 0.5)


# Anvil layout: wte, wpe, per block (ln_1.w, ln_1.b, c_attn.w [3C,C], c_attn.b, c_proj.w [C,C],
# c_proj.b, ln_2.w, ln_2.b, c_fc.w [4C,C], c_fc.b, c_proj.w [C,4C], c_proj.b), ln_f.w, ln_f.b
off = 0
def take(*shape):
    global off
    n = int(np.prod(shape))
    t = param(off, n).reshape(shape)
    off += n
    return t

wte = take(VP, C)
wpe = take(MAXT, C)
blocks = []
for _ in range(L):
    blk = {}
    blk["ln1w"], blk["ln1b"] = take(C), take(C)
    blk["attnw"], blk["attnb"] = take(3 * C, C).T, take(3 * C)    # to HF's Conv1D [in, out]
    blk["projw"], blk["projb"] = take(C, C).T, take(C)
    blk["ln2w"], blk["ln2b"] = take(C), take(C)
    blk["fcw"], blk["fcb"] = take(4 * C, C).T, take(4 * C)
    blk["mprojw"], blk["mprojb"] = take(C, 4 * C).T, take(C)
    blocks.append(blk)
lnfw, lnfb = take(C), take(C)

i = np.arange(B * T)
idx = ((7 * i + 3) % V).reshape(B, T)
tgt = ((5 * i + 1) % V).reshape(B, T)


def layernorm(x, w, b):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-5) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


x = wte[idx] + wpe[np.arange(T)]
mask = np.tril(np.ones((T, T), dtype=bool))
for blk in blocks:
    qkv = layernorm(x, blk["ln1w"], blk["ln1b"]) @ blk["attnw"] + blk["attnb"]
    q, k, v = np.split(qkv, 3, axis=-1)
    q, k, v = (a.reshape(B, T, NH, HS).transpose(0, 2, 1, 3) for a in (q, k, v))
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(HS)
    s = np.where(mask, s, -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    att = s / s.sum(-1, keepdims=True)
    y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
    x = x + y @ blk["projw"] + blk["projb"]
    h = gelu_new(layernorm(x, blk["ln2w"], blk["ln2b"]) @ blk["fcw"] + blk["fcb"])
    x = x + h @ blk["mprojw"] + blk["mprojb"]
logits = layernorm(x, lnfw, lnfb) @ wte[:V].T
mx = logits.max(-1, keepdims=True)
lse = (mx + np.log(np.exp(logits - mx).sum(-1, keepdims=True)))[..., 0]
loss = (lse - np.take_along_axis(logits, tgt[..., None], -1)[..., 0]).mean()
assert off == VP * C + MAXT * C + L * 12 * C * C + L * 13 * C + 2 * C
print(repr(float(loss)))
