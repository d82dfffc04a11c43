package dev.anvil.kernels;

/**
 * Float64 reference implementations of every {@link TransformerOps} and {@link OptimizerOps} op,
 * written from the math as plain loops in the style of llm.c's {@code train_gpt2.c}. They share no
 * code with any backend: the conformance suite checks backends against these, and checks these
 * against finite differences.
 *
 * <p>Shapes and argument orders follow the interface. Like the interface, every backward
 * <em>accumulates</em> ({@code +=}) into the gradient arrays it is given.
 */
public final class Reference64 {

    /** LayerNorm epsilon, as documented on {@link TransformerOps#layerNormForward}. */
    public static final double LAYER_NORM_EPS = 1e-5;

    private Reference64() {
    }

    // ---- encoder ----

    public static void encoderForward(double[] out, int[] tokens, double[] wte, double[] wpe, int b, int t, int c) {
        for (int bb = 0; bb < b; bb++) {
            for (int tt = 0; tt < t; tt++) {
                int id = tokens[bb * t + tt];
                for (int i = 0; i < c; i++) {
                    out[(bb * t + tt) * c + i] = wte[id * c + i] + wpe[tt * c + i];
                }
            }
        }
    }

    public static void encoderBackward(double[] dwte, double[] dwpe, double[] dout, int[] tokens,
                                       int b, int t, int c) {
        for (int bb = 0; bb < b; bb++) {
            for (int tt = 0; tt < t; tt++) {
                int id = tokens[bb * t + tt];
                for (int i = 0; i < c; i++) {
                    double d = dout[(bb * t + tt) * c + i];
                    dwte[id * c + i] += d;
                    dwpe[tt * c + i] += d;
                }
            }
        }
    }

    // ---- layernorm ----

    public static void layerNormForward(double[] out, double[] mean, double[] rstd, double[] inp, double[] weight,
                                        double[] bias, int n, int c) {
        for (int r = 0; r < n; r++) {
            double m = 0;
            for (int i = 0; i < c; i++) {
                m += inp[r * c + i];
            }
            m /= c;
            double var = 0;
            for (int i = 0; i < c; i++) {
                double d = inp[r * c + i] - m;
                var += d * d;
            }
            var /= c;
            double s = 1.0 / Math.sqrt(var + LAYER_NORM_EPS);
            for (int i = 0; i < c; i++) {
                out[r * c + i] = (inp[r * c + i] - m) * s * weight[i] + bias[i];
            }
            mean[r] = m;
            rstd[r] = s;
        }
    }

    /**
     * LayerNorm backward. Recomputes each row's mean and rstd from {@code inp} in float64 rather
     * than taking the forward's saved statistics, so it depends on nothing a backend produced.
     */
    public static void layerNormBackward(double[] dinp, double[] dweight, double[] dbias, double[] dout,
                                         double[] inp, double[] weight, int n, int c) {
        double[] mean = new double[1];
        double[] rstd = new double[1];
        double[] row = new double[c];
        double[] one = new double[c];
        double[] zero = new double[c];
        java.util.Arrays.fill(one, 1.0);
        for (int r = 0; r < n; r++) {
            double[] x = java.util.Arrays.copyOfRange(inp, r * c, (r + 1) * c);
            layerNormForward(row, mean, rstd, x, one, zero, 1, c); // row = normalised input
            // y_i = xhat_i w_i + b_i;  dxhat_i = w_i dy_i
            // dx_j = rstd · (dxhat_j - mean_i(dxhat_i) - xhat_j · mean_i(dxhat_i xhat_i))
            double meanD = 0, meanDX = 0;
            for (int i = 0; i < c; i++) {
                double dxhat = weight[i] * dout[r * c + i];
                meanD += dxhat;
                meanDX += dxhat * row[i];
            }
            meanD /= c;
            meanDX /= c;
            for (int i = 0; i < c; i++) {
                double dy = dout[r * c + i];
                dbias[i] += dy;
                dweight[i] += row[i] * dy;
                dinp[r * c + i] += rstd[0] * (weight[i] * dy - meanD - row[i] * meanDX);
            }
        }
    }

    // ---- matmul ----

    /** {@code out[n, oc] = inp[n, c] · weight[oc, c]ᵀ + bias[oc]}; {@code bias} may be null. */
    public static void matmulForward(double[] out, double[] inp, double[] weight, double[] bias, int n, int c, int oc) {
        for (int r = 0; r < n; r++) {
            for (int o = 0; o < oc; o++) {
                double acc = bias == null ? 0 : bias[o];
                for (int i = 0; i < c; i++) {
                    acc += inp[r * c + i] * weight[o * c + i];
                }
                out[r * oc + o] = acc;
            }
        }
    }

    /** Matmul backward; {@code dinp} and {@code dbias} may be null. */
    public static void matmulBackward(double[] dinp, double[] dweight, double[] dbias, double[] dout, double[] inp,
                                      double[] weight, int n, int c, int oc) {
        for (int r = 0; r < n; r++) {
            for (int o = 0; o < oc; o++) {
                double d = dout[r * oc + o];
                for (int i = 0; i < c; i++) {
                    if (dinp != null) {
                        dinp[r * c + i] += d * weight[o * c + i];
                    }
                    dweight[o * c + i] += d * inp[r * c + i];
                }
                if (dbias != null) {
                    dbias[o] += d;
                }
            }
        }
    }

    // ---- attention ----

    /**
     * Causal self-attention with the full {@code t×t} probability matrix, llm.c style.
     *
     * @param lse {@code [b, nh, t]}: log Σ_{s≤t} exp(q_t·k_s / sqrt(hs)) of each softmax row
     */
    public static void attentionForward(double[] out, double[] lse, double[] qkv, int b, int t, int c, int nh) {
        int hs = c / nh;
        double[] att = new double[t];
        for (int bb = 0; bb < b; bb++) {
            for (int h = 0; h < nh; h++) {
                for (int tq = 0; tq < t; tq++) {
                    double rowLse = softmaxRow(att, qkv, bb, h, tq, t, c, hs);
                    int o = (bb * t + tq) * c + h * hs;
                    for (int i = 0; i < hs; i++) {
                        double acc = 0;
                        for (int s = 0; s <= tq; s++) {
                            acc += att[s] * qkv[(bb * t + s) * 3 * c + 2 * c + h * hs + i];
                        }
                        out[o + i] = acc;
                    }
                    lse[(bb * nh + h) * t + tq] = rowLse;
                }
            }
        }
    }

    /**
     * Fills {@code att[0..tq]} with query {@code tq}'s causal softmax probabilities over the keys of
     * head {@code h} in batch row {@code bb}, and returns the row's log-sum-exp.
     */
    private static double softmaxRow(double[] att, double[] qkv, int bb, int h, int tq, int t, int c, int hs) {
        double scale = 1.0 / Math.sqrt(hs);
        int q = (bb * t + tq) * 3 * c + h * hs;
        double max = Double.NEGATIVE_INFINITY;
        for (int s = 0; s <= tq; s++) {
            int k = (bb * t + s) * 3 * c + c + h * hs;
            double dot = 0;
            for (int i = 0; i < hs; i++) {
                dot += qkv[q + i] * qkv[k + i];
            }
            att[s] = dot * scale;
            max = Math.max(max, att[s]);
        }
        double sum = 0;
        for (int s = 0; s <= tq; s++) {
            att[s] = Math.exp(att[s] - max);
            sum += att[s];
        }
        for (int s = 0; s <= tq; s++) {
            att[s] /= sum;
        }
        return max + Math.log(sum);
    }

    /** Attention backward through the explicit softmax Jacobian (recomputes the probabilities). */
    public static void attentionBackward(double[] dqkv, double[] dout, double[] qkv, int b, int t, int c, int nh) {
        int hs = c / nh;
        double scale = 1.0 / Math.sqrt(hs);
        double[] att = new double[t];
        double[] datt = new double[t];
        double[] dpre = new double[t];
        for (int bb = 0; bb < b; bb++) {
            for (int h = 0; h < nh; h++) {
                for (int tq = 0; tq < t; tq++) {
                    int q = (bb * t + tq) * 3 * c + h * hs;
                    int go = (bb * t + tq) * c + h * hs;
                    softmaxRow(att, qkv, bb, h, tq, t, c, hs);
                    // out = Σ_s att[s] v_s
                    for (int s = 0; s <= tq; s++) {
                        int v = (bb * t + s) * 3 * c + 2 * c + h * hs;
                        double d = 0;
                        for (int i = 0; i < hs; i++) {
                            d += dout[go + i] * qkv[v + i];
                            dqkv[v + i] += att[s] * dout[go + i];
                        }
                        datt[s] = d;
                    }
                    // softmax: dpre[s'] = Σ_s datt[s] · att[s] · (δ(s, s') - att[s'])
                    for (int s2 = 0; s2 <= tq; s2++) {
                        double acc = 0;
                        for (int s = 0; s <= tq; s++) {
                            double jac = att[s] * ((s == s2 ? 1.0 : 0.0) - att[s2]);
                            acc += datt[s] * jac;
                        }
                        dpre[s2] = acc;
                    }
                    // pre[s] = scale · q · k_s
                    for (int s = 0; s <= tq; s++) {
                        int k = (bb * t + s) * 3 * c + c + h * hs;
                        for (int i = 0; i < hs; i++) {
                            dqkv[q + i] += dpre[s] * scale * qkv[k + i];
                            dqkv[k + i] += dpre[s] * scale * qkv[q + i];
                        }
                    }
                }
            }
        }
    }

    // ---- gelu ----

    private static final double GELU_SCALE = Math.sqrt(2.0 / Math.PI);

    public static void geluForward(double[] out, double[] inp, int n) {
        for (int i = 0; i < n; i++) {
            double x = inp[i];
            out[i] = 0.5 * x * (1.0 + Math.tanh(GELU_SCALE * (x + 0.044715 * x * x * x)));
        }
    }

    public static void geluBackward(double[] dinp, double[] inp, double[] dout, int n) {
        for (int i = 0; i < n; i++) {
            double x = inp[i];
            double u = GELU_SCALE * (x + 0.044715 * x * x * x);
            double du = GELU_SCALE * (1.0 + 3 * 0.044715 * x * x);
            double th = Math.tanh(u);
            double cosh = Math.cosh(u);
            double grad = 0.5 * (1.0 + th) + 0.5 * x * du / (cosh * cosh);
            dinp[i] += grad * dout[i];
        }
    }

    // ---- residual ----

    public static void residualForward(double[] out, double[] a, double[] b, int n) {
        for (int i = 0; i < n; i++) {
            out[i] = a[i] + b[i];
        }
    }

    public static void residualBackward(double[] da, double[] db, double[] dout, int n) {
        for (int i = 0; i < n; i++) {
            da[i] += dout[i];
            db[i] += dout[i];
        }
    }

    // ---- cross-entropy ----

    /**
     * Per-row loss {@code logsumexp(logits[r, :v]) - logits[r, target]}, and, when {@code dlogits}
     * is not null, <em>writes</em> the gradient of {@code gradScale · Σ losses} into it
     * ({@code [n, vp]}, zero in the padding columns).
     */
    public static void crossEntropy(double[] losses, double[] dlogits, double[] logits, int[] targets,
                                    int n, int v, int vp, double gradScale) {
        for (int r = 0; r < n; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < v; i++) {
                max = Math.max(max, logits[r * vp + i]);
            }
            double sum = 0;
            for (int i = 0; i < v; i++) {
                sum += Math.exp(logits[r * vp + i] - max);
            }
            int target = targets[r];
            losses[r] = max + Math.log(sum) - logits[r * vp + target];
            if (dlogits != null) {
                for (int i = 0; i < vp; i++) {
                    double p = i < v ? Math.exp(logits[r * vp + i] - max) / sum : 0.0;
                    double onehot = i == target ? 1.0 : 0.0;
                    dlogits[r * vp + i] = i < v ? (p - onehot) * gradScale : 0.0;
                }
            }
        }
    }

    // ---- optimizer ----

    /** {@code Σ x²} in float64. */
    public static double sumOfSquares(float[] x) {
        double s = 0;
        for (float f : x) {
            s += (double) f * f;
        }
        return s;
    }

    /**
     * One {@code torch.optim.AdamW} step in float64 (scalars are taken as the exact values of the
     * fp32 arguments a backend receives).
     */
    public static void adamw(double[] p, double[] g, double[] m, double[] v, AdamWStep s) {
        double b1 = s.beta1(), b2 = s.beta2();
        double bc1 = 1 - Math.pow(b1, s.step());
        double bc2 = 1 - Math.pow(b2, s.step());
        for (int i = 0; i < p.length; i++) {
            double grad = g[i] * (double) s.gradScale();
            m[i] = b1 * m[i] + (1 - b1) * grad;
            v[i] = b2 * v[i] + (1 - b2) * grad * grad;
            p[i] -= (double) s.lr() * s.weightDecay() * p[i];
            double mHat = m[i] / bc1;
            double denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + s.eps();
            p[i] -= (double) s.lr() * mHat / denom;
        }
    }
}
