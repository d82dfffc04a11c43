package dev.anvil.engine.model;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Checks the float64 reference by itself, before anything is checked against it. */
class ReferenceGpt64Test {

    /** L=2, C=16, nh=2, T=8, V=40: padded to 128 rows, so most of wte is padding. */
    private static final GptConfig SMALL = GptConfig.of(2, 16, 2, 8, 40);
    private static final int B = 2;
    private static final int T = 5; // below maxSeqLen, so wpe rows 5..7 are unused

    private final ReferenceGpt64 reference = new ReferenceGpt64(SMALL);
    private final int[] inputs = GptTestData.tokens(B * T, SMALL.vocabSize(), 11);
    private final int[] targets = GptTestData.tokens(B * T, SMALL.vocabSize(), 12);

    @Test
    void gradientMatchesCentralDifferencesOnEveryParameter() {
        // Stressed weights, so attention is peaked, GELU bends and biases matter; at GPT-2's init
        // many paths are nearly linear and a wrong backward could still agree.
        double[] p = GptTestData.stressed(SMALL, 7);
        double[] g = reference.lossAndGradient(p, inputs, targets, B, T).gradient();

        // Every coordinate (the model is small enough): in double, central differences with
        // h = 1e-5 have truncation error ~h²·f'''/6 ≈ 1e-11 and rounding error ~1e-16·loss/h ≈ 1e-10,
        // hence |fd - g| <= 1e-6·|g| + 1e-9. Observed: max |fd - g| 2.6e-10 for |g| up to 0.41.
        double h = 1e-5;
        double worstExcess = 0;
        String worst = "";
        for (ParameterLayout.Tensor tensor : ParameterLayout.of(SMALL).tensors()) {
            double maxAbs = 0;
            for (int i = 0; i < tensor.size(); i++) {
                int k = Math.toIntExact(tensor.offset()) + i;
                double fd = centralDifference(p, k, h);
                double err = Math.abs(fd - g[k]);
                double excess = err / (1e-6 * Math.abs(g[k]) + 1e-9);
                if (excess > worstExcess) {
                    worstExcess = excess;
                    worst = tensor.name() + "[" + i + "]: analytic " + g[k] + ", numeric " + fd;
                }
                maxAbs = Math.max(maxAbs, Math.abs(g[k]));
            }
            // a tensor whose gradient is all zero would pass vacuously
            assertTrue(maxAbs > 1e-3, tensor.name() + " has a negligible gradient: " + maxAbs);
        }
        assertTrue(worstExcess <= 1, "gradient off finite differences at " + worst);
    }

    private double centralDifference(double[] p, int k, double h) {
        double saved = p[k];
        p[k] = saved + h;
        double plus = reference.loss(p, inputs, targets, B, T);
        p[k] = saved - h;
        double minus = reference.loss(p, inputs, targets, B, T);
        p[k] = saved;
        return (plus - minus) / (2 * h);
    }

    @Test
    void lossMatchesAnIndependentNumpyImplementationOfHuggingFaceGpt2() {
        // Golden value from src/test/python/gpt2_golden_loss.py: same formulas for parameters and
        // tokens, HF's tensor conventions, numpy's own summation order. Three heads of four
        // channels, so a mix-up of the q|k|v split or of the head layout would change the loss.
        GptConfig config = GptConfig.of(2, 12, 3, 6, 30);
        int b = 2;
        int t = 6;
        double[] p = new double[Math.toIntExact(config.parameterCount())];
        for (int k = 0; k < p.length; k++) {
            p[k] = 0.25 * Math.sin(0.001 * k * k + 1.3 * k + 0.5);
        }
        int[] in = new int[b * t];
        int[] out = new int[b * t];
        for (int i = 0; i < b * t; i++) {
            in[i] = (7 * i + 3) % config.vocabSize();
            out[i] = (5 * i + 1) % config.vocabSize();
        }
        assertEquals(3.3771422243731113, new ReferenceGpt64(config).loss(p, in, out, b, t), 1e-12);
    }

    @Test
    void paddedVocabularyRowsNeitherChangeTheLossNorGetGradient() {
        ParameterLayout layout = ParameterLayout.of(SMALL);
        double[] p = GptTestData.stressed(SMALL, 8);
        int firstPadded = Math.toIntExact(layout.tensor("transformer.wte.weight").offset())
                + SMALL.vocabSize() * SMALL.channels();
        int endPadded = Math.toIntExact(layout.tensor("transformer.wte.weight").offset())
                + SMALL.paddedVocabSize() * SMALL.channels();
        ReferenceGpt64.Result before = reference.lossAndGradient(p, inputs, targets, B, T);

        // Large values in the padded rows would dominate the softmax if they took part in it.
        Arrays.fill(p, firstPadded, endPadded, 5.0);
        ReferenceGpt64.Result after = reference.lossAndGradient(p, inputs, targets, B, T);

        assertEquals(before.loss(), after.loss(), 0.0);
        assertTrue(Arrays.equals(before.gradient(), after.gradient()));
        for (int k = firstPadded; k < endPadded; k++) {
            assertEquals(0.0, after.gradient()[k], 0.0, "padded wte element " + k);
        }
    }

    @Test
    void lossIsExactlyLnVocabSizeWhenAllLogitsAreEqual() {
        // wte = 0 makes every logit 0: the softmax is uniform over the V real tokens, not the
        // padded rows, so the loss is ln(40), not ln(128).
        double[] p = GptTestData.stressed(SMALL, 9);
        ParameterLayout.Tensor wte = ParameterLayout.of(SMALL).tensor("transformer.wte.weight");
        Arrays.fill(p, Math.toIntExact(wte.offset()), Math.toIntExact(wte.offset() + wte.size()), 0.0);
        assertEquals(Math.log(SMALL.vocabSize()), reference.loss(p, inputs, targets, B, T), 1e-12);
    }

    @Test
    void lossIsNearLnVocabSizeAtGpt2Initialization() {
        // ln_f's output has unit variance and wte std 0.02, so logits have variance C·0.02² and the
        // expected loss exceeds ln V by about half that: 0.003 here.
        // Over 400 positions the mean of random targets' losses has a spread of about 0.004.
        double[] p = GptTestData.gpt2Init(SMALL, 10);
        int b = 50;
        int t = SMALL.maxSeqLen();
        double loss = reference.loss(p, GptTestData.tokens(b * t, SMALL.vocabSize(), 21),
                GptTestData.tokens(b * t, SMALL.vocabSize(), 22), b, t);
        assertEquals(Math.log(SMALL.vocabSize()), loss, 0.02);
    }

    @Test
    void laterTokensDoNotChangeEarlierPositionsLosses() {
        double[] p = GptTestData.stressed(SMALL, 13);
        int[] changed = inputs.clone();
        int keep = 2; // positions 0..2 of every row keep their tokens, 3..4 change
        for (int b = 0; b < B; b++) {
            for (int t = keep + 1; t < T; t++) {
                changed[b * T + t] = (changed[b * T + t] + 1) % SMALL.vocabSize();
            }
        }
        double[] original = reference.forward(p, inputs, targets, B, T).positionLosses();
        double[] modified = reference.forward(p, changed, targets, B, T).positionLosses();
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                if (t <= keep) {
                    assertEquals(original[b * T + t], modified[b * T + t], 0.0, "position " + t + " saw the future");
                } else {
                    assertNotEquals(original[b * T + t], modified[b * T + t], "position " + t + " ignored its own input");
                }
            }
        }
    }

    @Test
    void rejectsTokensInThePaddedRows() {
        double[] p = GptTestData.gpt2Init(SMALL, 1);
        int[] bad = inputs.clone();
        bad[3] = SMALL.vocabSize();
        assertThrows(IllegalArgumentException.class, () -> reference.loss(p, bad, targets, B, T));
        assertThrows(IllegalArgumentException.class, () -> reference.loss(p, inputs, bad, B, T));
    }
}
