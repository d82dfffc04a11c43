package dev.anvil.engine.model;

/**
 * An independent, deliberately plain float64 implementation of GPT-2's training math, the ground
 * truth that {@code GptModel} is tested against.
 *
 * <p>It computes the mean cross-entropy loss over all {@code B·T} positions and, by a hand-written
 * backward pass, the gradient of that mean loss with respect to every parameter. Parameters and
 * gradients are {@code double[]} in {@link ParameterLayout} order and shapes (matmul weights are
 * {@code [out, in]}, so {@code y = x·Wᵀ + b}).
 *
 * <p>The model is exactly GPT-2 without dropout:
 * <pre>
 *   x      = wte[token] + wpe[position]
 *   per block:  x = x + c_proj(attention(c_attn(ln_1(x))))
 *               x = x + c_proj(gelu_tanh(c_fc(ln_2(x))))
 *   logits = ln_f(x) · wte[0, V)ᵀ            (tied head; padded rows of wte are not vocabulary)
 *   loss   = mean over positions of -log softmax(logits)[target]
 * </pre>
 * LayerNorm uses the biased variance and eps 1e-5; attention is causal, scaled by
 * {@code 1/sqrt(C/nh)}. Every op is a plain loop with its forward and backward side by side, in
 * the style of llm.c, so that it can be read and checked line by line; speed is no concern.
 *
 * <p>Instances hold no mutable state; each call allocates its own activations.
 */
public final class ReferenceGpt64 {

    /** LayerNorm's epsilon, as in GPT-2. */
    public static final double LN_EPS = 1e-5;

    private static final double GELU_SCALE = Math.sqrt(2.0 / Math.PI);

    private final GptConfig config;
    private final ParameterLayout layout;

    /** A reference for models of shape {@code config}. */
    public ReferenceGpt64(GptConfig config) {
        this.config = config;
        this.layout = ParameterLayout.of(config);
    }

    /**
     * The outcome of one forward (and maybe backward) pass.
     *
     * @param loss           mean cross-entropy over all positions
     * @param positionLosses cross-entropy at each of the {@code B·T} positions
     * @param gradient       gradient of {@code loss} in {@link ParameterLayout} order, or null after a
     *                       forward pass alone
     */
    public record Result(double loss, double[] positionLosses, double[] gradient) {
    }

    /** The model shape. */
    public GptConfig config() {
        return config;
    }

    /** Mean loss of {@code targets} given {@code inputs}, both {@code [b, t]} row-major. */
    public double loss(double[] params, int[] inputs, int[] targets, int b, int t) {
        return run(params, inputs, targets, b, t, false).loss();
    }

    /** Per-position losses, without the backward pass. */
    public Result forward(double[] params, int[] inputs, int[] targets, int b, int t) {
        return run(params, inputs, targets, b, t, false);
    }

    /** Mean loss and its gradient with respect to every parameter. */
    public Result lossAndGradient(double[] params, int[] inputs, int[] targets, int b, int t) {
        return run(params, inputs, targets, b, t, true);
    }

    /** Widens fp32 parameters exactly, so the reference sees the very values a float model holds. */
    public static double[] toDouble(float[] values) {
        double[] out = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = values[i];
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------
    // The whole model
    // ------------------------------------------------------------------------------------------

    /** What one block's forward pass keeps for its backward pass. */
    private static final class BlockActivations {
        double[] input;                 // residual stream entering the block   [BT, C]
        double[] ln1, ln1Mean, ln1Rstd; // [BT, C], [BT], [BT]
        double[] qkv;                   // [BT, 3C]
        double[] att;                   // softmaxed attention [B, nh, T, T]
        double[] attY;                  // heads concatenated  [BT, C]
        double[] mid;                   // residual after attention [BT, C]
        double[] ln2, ln2Mean, ln2Rstd;
        double[] fc;                    // c_fc output, before GELU [BT, 4C]
        double[] fcGelu;                // [BT, 4C]
    }

    private Result run(double[] p, int[] inputs, int[] targets, int b, int t, boolean backward) {
        validate(p, inputs, targets, b, t);
        final int C = config.channels();
        final int L = config.numLayers();
        final int NH = config.numHeads();
        final int BT = b * t;

        int wte = offset("transformer.wte.weight");
        int wpe = offset("transformer.wpe.weight");

        // ---- forward ----
        double[] x = new double[BT * C];
        encoderForward(x, inputs, p, wte, wpe, b, t, C);

        BlockActivations[] acts = new BlockActivations[L];
        for (int l = 0; l < L; l++) {
            BlockActivations a = new BlockActivations();
            acts[l] = a;
            a.input = x;
            a.ln1 = new double[BT * C];
            a.ln1Mean = new double[BT];
            a.ln1Rstd = new double[BT];
            layerNormForward(a.ln1, a.ln1Mean, a.ln1Rstd, x, p, block(l, "ln_1.weight"), block(l, "ln_1.bias"), BT, C);
            a.qkv = new double[BT * 3 * C];
            matmulForward(a.qkv, a.ln1, p, block(l, "attn.c_attn.weight"), block(l, "attn.c_attn.bias"), BT, C, 3 * C);
            a.att = new double[b * NH * t * t];
            a.attY = new double[BT * C];
            attentionForward(a.attY, a.att, a.qkv, b, t, C, NH);
            double[] attProj = new double[BT * C];
            matmulForward(attProj, a.attY, p, block(l, "attn.c_proj.weight"), block(l, "attn.c_proj.bias"), BT, C, C);
            a.mid = add(x, attProj);

            a.ln2 = new double[BT * C];
            a.ln2Mean = new double[BT];
            a.ln2Rstd = new double[BT];
            layerNormForward(a.ln2, a.ln2Mean, a.ln2Rstd, a.mid, p, block(l, "ln_2.weight"), block(l, "ln_2.bias"), BT, C);
            a.fc = new double[BT * 4 * C];
            matmulForward(a.fc, a.ln2, p, block(l, "mlp.c_fc.weight"), block(l, "mlp.c_fc.bias"), BT, C, 4 * C);
            a.fcGelu = new double[BT * 4 * C];
            geluForward(a.fcGelu, a.fc);
            double[] mlpProj = new double[BT * C];
            matmulForward(mlpProj, a.fcGelu, p, block(l, "mlp.c_proj.weight"), block(l, "mlp.c_proj.bias"), BT, 4 * C, C);
            x = add(a.mid, mlpProj);
        }

        double[] lnf = new double[BT * C];
        double[] lnfMean = new double[BT];
        double[] lnfRstd = new double[BT];
        int lnfW = offset("transformer.ln_f.weight");
        int lnfB = offset("transformer.ln_f.bias");
        layerNormForward(lnf, lnfMean, lnfRstd, x, p, lnfW, lnfB, BT, C);

        double[] positionLosses = new double[BT];
        double[] g = backward ? new double[p.length] : null;
        double[] dLnf = backward ? new double[BT * C] : null;
        // The head's forward and backward are fused: the gradient of the mean loss needs only the
        // probabilities of the same row, so nothing of size [BT, V] has to be kept.
        double loss = tiedHeadCrossEntropy(positionLosses, dLnf, g, lnf, p, wte, targets, BT, C);
        if (!backward) {
            return new Result(loss, positionLosses, null);
        }

        // ---- backward: ln_f, then blocks last to first, then the embeddings ----
        double[] dx = new double[BT * C];
        layerNormBackward(dx, g, lnfW, lnfB, dLnf, x, lnfMean, lnfRstd, p, BT, C);

        for (int l = L - 1; l >= 0; l--) {
            BlockActivations a = acts[l];
            // MLP branch: x_out = mid + c_proj(gelu(c_fc(ln_2(mid))))
            double[] dMid = dx.clone(); // the residual passes the gradient through unchanged
            double[] dFcGelu = new double[BT * 4 * C];
            matmulBackward(dFcGelu, g, block(l, "mlp.c_proj.weight"), block(l, "mlp.c_proj.bias"), dx, a.fcGelu, p, BT, 4 * C, C);
            double[] dFc = new double[BT * 4 * C];
            geluBackward(dFc, a.fc, dFcGelu);
            double[] dLn2 = new double[BT * C];
            matmulBackward(dLn2, g, block(l, "mlp.c_fc.weight"), block(l, "mlp.c_fc.bias"), dFc, a.ln2, p, BT, C, 4 * C);
            layerNormBackward(dMid, g, block(l, "ln_2.weight"), block(l, "ln_2.bias"), dLn2, a.mid, a.ln2Mean, a.ln2Rstd, p, BT, C);

            // attention branch: mid = x_in + c_proj(attention(c_attn(ln_1(x_in))))
            double[] dIn = dMid.clone();
            double[] dAttY = new double[BT * C];
            matmulBackward(dAttY, g, block(l, "attn.c_proj.weight"), block(l, "attn.c_proj.bias"), dMid, a.attY, p, BT, C, C);
            double[] dQkv = new double[BT * 3 * C];
            attentionBackward(dQkv, dAttY, a.qkv, a.att, b, t, C, NH);
            double[] dLn1 = new double[BT * C];
            matmulBackward(dLn1, g, block(l, "attn.c_attn.weight"), block(l, "attn.c_attn.bias"), dQkv, a.ln1, p, BT, C, 3 * C);
            layerNormBackward(dIn, g, block(l, "ln_1.weight"), block(l, "ln_1.bias"), dLn1, a.input, a.ln1Mean, a.ln1Rstd, p, BT, C);
            dx = dIn;
        }

        encoderBackward(g, wte, wpe, dx, inputs, b, t, C);
        return new Result(loss, positionLosses, g);
    }

    private void validate(double[] p, int[] inputs, int[] targets, int b, int t) {
        if (p.length != layout.totalSize()) {
            throw new IllegalArgumentException("expected " + layout.totalSize() + " parameters, got " + p.length);
        }
        if (b <= 0 || t <= 0 || t > config.maxSeqLen()) {
            throw new IllegalArgumentException("bad batch shape b=" + b + ", t=" + t + " for " + config);
        }
        if (inputs.length != b * t || targets.length != b * t) {
            throw new IllegalArgumentException("inputs and targets must hold b*t = " + b * t + " tokens");
        }
        for (int i = 0; i < b * t; i++) {
            // Padded rows are not vocabulary: a token there would be a caller's bug.
            if (inputs[i] < 0 || inputs[i] >= config.vocabSize() || targets[i] < 0 || targets[i] >= config.vocabSize()) {
                throw new IllegalArgumentException("token out of vocabulary at " + i);
            }
        }
    }

    private int offset(String name) {
        return Math.toIntExact(layout.tensor(name).offset());
    }

    private int block(int layer, String suffix) {
        return Math.toIntExact(layout.block(layer, suffix).offset());
    }

    private static double[] add(double[] a, double[] b) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i] + b[i];
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------
    // Encoder: x[b,t] = wte[token] + wpe[t]
    // ------------------------------------------------------------------------------------------

    private static void encoderForward(double[] out, int[] inputs, double[] p, int wte, int wpe, int B, int T, int C) {
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                int tok = inputs[b * T + t];
                for (int c = 0; c < C; c++) {
                    out[(b * T + t) * C + c] = p[wte + tok * C + c] + p[wpe + t * C + c];
                }
            }
        }
    }

    private static void encoderBackward(double[] g, int wte, int wpe, double[] dout, int[] inputs, int B, int T, int C) {
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                int tok = inputs[b * T + t];
                for (int c = 0; c < C; c++) {
                    double d = dout[(b * T + t) * C + c];
                    g[wte + tok * C + c] += d;
                    g[wpe + t * C + c] += d;
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // LayerNorm over the last dimension, biased variance
    // ------------------------------------------------------------------------------------------

    private static void layerNormForward(double[] out, double[] mean, double[] rstd, double[] x, double[] p,
                                         int w, int bias, int N, int C) {
        for (int n = 0; n < N; n++) {
            double m = 0;
            for (int c = 0; c < C; c++) {
                m += x[n * C + c];
            }
            m /= C;
            double v = 0;
            for (int c = 0; c < C; c++) {
                double d = x[n * C + c] - m;
                v += d * d;
            }
            v /= C;
            double s = 1.0 / Math.sqrt(v + LN_EPS);
            for (int c = 0; c < C; c++) {
                out[n * C + c] = (x[n * C + c] - m) * s * p[w + c] + p[bias + c];
            }
            mean[n] = m;
            rstd[n] = s;
        }
    }

    /** Accumulates into {@code dx} and the gradients of the weight and bias. */
    private static void layerNormBackward(double[] dx, double[] g, int w, int bias, double[] dout, double[] x,
                                          double[] mean, double[] rstd, double[] p, int N, int C) {
        for (int n = 0; n < N; n++) {
            // With norm = (x - mean)·rstd and dnorm = w·dout, the gradient through the mean and the
            // variance reduces to rstd·(dnorm - mean(dnorm) - norm·mean(dnorm·norm)).
            double dnormMean = 0;
            double dnormNormMean = 0;
            for (int c = 0; c < C; c++) {
                double norm = (x[n * C + c] - mean[n]) * rstd[n];
                double dnorm = p[w + c] * dout[n * C + c];
                dnormMean += dnorm;
                dnormNormMean += dnorm * norm;
            }
            dnormMean /= C;
            dnormNormMean /= C;
            for (int c = 0; c < C; c++) {
                double norm = (x[n * C + c] - mean[n]) * rstd[n];
                double dnorm = p[w + c] * dout[n * C + c];
                g[w + c] += norm * dout[n * C + c];
                g[bias + c] += dout[n * C + c];
                dx[n * C + c] += (dnorm - dnormMean - norm * dnormNormMean) * rstd[n];
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Linear: out[n, o] = sum_i inp[n, i]·W[o, i] + bias[o], W stored [OUT, IN]
    // ------------------------------------------------------------------------------------------

    private static void matmulForward(double[] out, double[] inp, double[] p, int w, int bias, int N, int IN, int OUT) {
        for (int n = 0; n < N; n++) {
            for (int o = 0; o < OUT; o++) {
                double s = p[bias + o];
                for (int i = 0; i < IN; i++) {
                    s += inp[n * IN + i] * p[w + o * IN + i];
                }
                out[n * OUT + o] = s;
            }
        }
    }

    /** Accumulates into {@code dinp} and the gradients of the weight and bias. */
    private static void matmulBackward(double[] dinp, double[] g, int w, int bias, double[] dout, double[] inp,
                                       double[] p, int N, int IN, int OUT) {
        for (int n = 0; n < N; n++) {
            for (int o = 0; o < OUT; o++) {
                double d = dout[n * OUT + o];
                g[bias + o] += d;
                for (int i = 0; i < IN; i++) {
                    dinp[n * IN + i] += p[w + o * IN + i] * d;
                    g[w + o * IN + i] += inp[n * IN + i] * d;
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Causal multi-head self-attention on qkv [BT, 3C] = (q | k | v), head h at channels h·hs
    // ------------------------------------------------------------------------------------------

    private static void attentionForward(double[] out, double[] att, double[] qkv, int B, int T, int C, int NH) {
        int hs = C / NH;
        double scale = 1.0 / Math.sqrt(hs);
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                for (int h = 0; h < NH; h++) {
                    int q = (b * T + t) * 3 * C + h * hs;
                    int a = ((b * NH + h) * T + t) * T;
                    // scores for keys t2 <= t; later keys are masked and stay 0 after the softmax
                    double max = Double.NEGATIVE_INFINITY;
                    for (int t2 = 0; t2 <= t; t2++) {
                        int k = (b * T + t2) * 3 * C + C + h * hs;
                        double s = 0;
                        for (int i = 0; i < hs; i++) {
                            s += qkv[q + i] * qkv[k + i];
                        }
                        s *= scale;
                        att[a + t2] = s;
                        max = Math.max(max, s);
                    }
                    double sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        double e = Math.exp(att[a + t2] - max);
                        att[a + t2] = e;
                        sum += e;
                    }
                    for (int t2 = 0; t2 <= t; t2++) {
                        att[a + t2] /= sum;
                    }
                    int o = (b * T + t) * C + h * hs;
                    for (int i = 0; i < hs; i++) {
                        double s = 0;
                        for (int t2 = 0; t2 <= t; t2++) {
                            s += att[a + t2] * qkv[(b * T + t2) * 3 * C + 2 * C + h * hs + i];
                        }
                        out[o + i] = s;
                    }
                }
            }
        }
    }

    /** Accumulates into {@code dqkv}. */
    private static void attentionBackward(double[] dqkv, double[] dout, double[] qkv, double[] att,
                                          int B, int T, int C, int NH) {
        int hs = C / NH;
        double scale = 1.0 / Math.sqrt(hs);
        double[] datt = new double[T];
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                for (int h = 0; h < NH; h++) {
                    int q = (b * T + t) * 3 * C + h * hs;
                    int a = ((b * NH + h) * T + t) * T;
                    int o = (b * T + t) * C + h * hs;
                    // out = att · v
                    for (int t2 = 0; t2 <= t; t2++) {
                        int v = (b * T + t2) * 3 * C + 2 * C + h * hs;
                        double s = 0;
                        for (int i = 0; i < hs; i++) {
                            s += qkv[v + i] * dout[o + i];
                            dqkv[v + i] += att[a + t2] * dout[o + i];
                        }
                        datt[t2] = s;
                    }
                    // softmax: dscore[t2] = att[t2]·(datt[t2] - sum_t3 att[t3]·datt[t3])
                    double dot = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        dot += att[a + t2] * datt[t2];
                    }
                    for (int t2 = 0; t2 <= t; t2++) {
                        double dScore = att[a + t2] * (datt[t2] - dot) * scale;
                        int k = (b * T + t2) * 3 * C + C + h * hs;
                        for (int i = 0; i < hs; i++) {
                            dqkv[q + i] += dScore * qkv[k + i];
                            dqkv[k + i] += dScore * qkv[q + i];
                        }
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // GELU, tanh approximation: 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³)))
    // ------------------------------------------------------------------------------------------

    private static void geluForward(double[] out, double[] x) {
        for (int i = 0; i < x.length; i++) {
            double u = GELU_SCALE * (x[i] + 0.044715 * x[i] * x[i] * x[i]);
            out[i] = 0.5 * x[i] * (1 + Math.tanh(u));
        }
    }

    private static void geluBackward(double[] dx, double[] x, double[] dout) {
        for (int i = 0; i < x.length; i++) {
            double u = GELU_SCALE * (x[i] + 0.044715 * x[i] * x[i] * x[i]);
            double th = Math.tanh(u);
            double du = GELU_SCALE * (1 + 3 * 0.044715 * x[i] * x[i]);
            double local = 0.5 * (1 + th) + 0.5 * x[i] * (1 - th * th) * du;
            dx[i] += local * dout[i];
        }
    }

    // ------------------------------------------------------------------------------------------
    // Tied LM head and mean cross-entropy, forward and (if dx != null) backward
    // ------------------------------------------------------------------------------------------

    /**
     * Returns the mean loss and fills {@code losses}; with {@code dx != null} also accumulates the
     * gradient of the mean loss into {@code dx} and the real vocabulary rows of wte in {@code g}.
     * Only rows {@code [0, V)} take part: padded rows get neither probability nor gradient.
     */
    private double tiedHeadCrossEntropy(double[] losses, double[] dx, double[] g, double[] x, double[] p, int wte,
                                        int[] targets, int N, int C) {
        int V = config.vocabSize();
        double[] logits = new double[V];
        double total = 0;
        for (int n = 0; n < N; n++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < V; v++) {
                double s = 0;
                for (int c = 0; c < C; c++) {
                    s += x[n * C + c] * p[wte + v * C + c];
                }
                logits[v] = s;
                max = Math.max(max, s);
            }
            double sum = 0;
            for (int v = 0; v < V; v++) {
                sum += Math.exp(logits[v] - max);
            }
            double logSumExp = max + Math.log(sum);
            losses[n] = logSumExp - logits[targets[n]];
            total += losses[n];
            if (dx == null) {
                continue;
            }
            for (int v = 0; v < V; v++) {
                double prob = Math.exp(logits[v] - logSumExp);
                double dLogit = (prob - (v == targets[n] ? 1 : 0)) / N; // the 1/N of the mean
                for (int c = 0; c < C; c++) {
                    dx[n * C + c] += dLogit * p[wte + v * C + c];
                    g[wte + v * C + c] += dLogit * x[n * C + c];
                }
            }
        }
        return total / N;
    }

    @Override
    public String toString() {
        return "ReferenceGpt64[" + config + "]";
    }
}
