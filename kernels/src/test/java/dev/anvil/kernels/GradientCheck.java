package dev.anvil.kernels;

import java.util.LinkedHashSet;
import java.util.Random;
import java.util.Set;
import java.util.function.DoubleSupplier;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Comparison and finite-difference helpers of the conformance suite.
 *
 * <p><b>The comparison rule.</b> An actual tensor {@code a} matches an expected tensor {@code b}
 * within relative tolerance {@code rtol} when every element satisfies
 * <pre>
 *   |a[i] - b[i]| &lt;= rtol · (|b[i]| + scale),   scale = max_j |b[j]|
 * </pre>
 * The {@code scale} term (the expected tensor's max-abs) gives elements near zero an absolute
 * tolerance in proportion to the tensor's magnitude, which is what float rounding in a sum or dot
 * product produces: an element that came out small by cancellation carries the rounding error of
 * its large terms. So every element may be off by at most {@code 2·rtol·max|b|}, and elements near
 * the maximum by about {@code rtol} relative. NaN or infinite actual values never match.
 */
public final class GradientCheck {

    private GradientCheck() {
    }

    /** The largest {@code |x[i]|}. */
    public static double maxAbs(double[] x) {
        double m = 0;
        for (double d : x) {
            m = Math.max(m, Math.abs(d));
        }
        return m;
    }

    /** Asserts {@code actual} matches {@code expected} under the rule in the class comment. */
    public static void assertClose(String what, float[] actual, double[] expected, double rtol) {
        assertClose(what, toDouble(actual), expected, rtol);
    }

    /** Asserts {@code actual} matches {@code expected} under the rule in the class comment. */
    public static void assertClose(String what, double[] actual, double[] expected, double rtol) {
        if (actual.length != expected.length) {
            fail(what + ": length " + actual.length + ", expected " + expected.length);
        }
        double scale = maxAbs(expected);
        int bad = 0;
        int first = -1;
        double worst = 0;
        int worstAt = -1;
        for (int i = 0; i < actual.length; i++) {
            double err = Math.abs(actual[i] - expected[i]);
            double allowed = rtol * (Math.abs(expected[i]) + scale);
            if (!(err <= allowed)) { // also catches NaN
                bad++;
                if (first < 0) {
                    first = i;
                }
                double ratio = allowed == 0 ? Double.POSITIVE_INFINITY : err / allowed;
                if (!(ratio <= worst)) {
                    worst = ratio;
                    worstAt = i;
                }
            }
        }
        if (bad > 0) {
            fail(String.format("%s: %d of %d elements differ beyond rtol %.1e (scale %.4g); first at [%d]: %.9g vs "
                            + "expected %.9g; worst at [%d]: %.9g vs expected %.9g (%.3g x allowed)",
                    what, bad, actual.length, rtol, scale, first, actual[first], expected[first], worstAt,
                    actual[worstAt], expected[worstAt], worst));
        }
    }

    /** Asserts two scalars match: {@code |a - b| <= rtol · |b|}. */
    public static void assertCloseScalar(String what, double actual, double expected, double rtol) {
        if (!(Math.abs(actual - expected) <= rtol * Math.abs(expected))) {
            fail(String.format("%s: %.12g, expected %.12g (relative error %.3g, allowed %.1e)", what, actual,
                    expected, Math.abs(actual - expected) / Math.abs(expected), rtol));
        }
    }

    /**
     * Central differences of a float64 objective: for each coordinate {@code i} in
     * {@code coords}, {@code (f(x + h e_i) - f(x - h e_i)) / 2h}. The objective reads {@code x},
     * which is perturbed in place and restored.
     */
    public static double[] centralDifferences(double[] x, int[] coords, double h, DoubleSupplier objective) {
        double[] fd = new double[coords.length];
        for (int k = 0; k < coords.length; k++) {
            int i = coords[k];
            double x0 = x[i];
            x[i] = x0 + h;
            double plus = objective.getAsDouble();
            x[i] = x0 - h;
            double minus = objective.getAsDouble();
            x[i] = x0;
            fd[k] = (plus - minus) / (2 * h);
        }
        return fd;
    }

    /**
     * Asserts finite-difference estimates {@code fd} (taken at {@code coords}) agree with the
     * analytic gradient: {@code |fd_k - g[coords_k]| <= rtol · (|g[coords_k]| + max|g|)}.
     */
    public static void assertFiniteDifferencesAgree(String what, double[] fd, double[] analytic, int[] coords,
                                                    double rtol) {
        double scale = maxAbs(analytic);
        for (int k = 0; k < coords.length; k++) {
            double g = analytic[coords[k]];
            double err = Math.abs(fd[k] - g);
            if (!(err <= rtol * (Math.abs(g) + scale))) {
                fail(String.format("%s: at [%d] the analytic gradient is %.9g, central differences give %.9g "
                        + "(error %.3g, allowed %.3g; gradient max-abs %.4g)", what, coords[k], g, fd[k], err,
                        rtol * (Math.abs(g) + scale), scale));
            }
        }
    }

    /**
     * Checks a float64 gradient by central differences with step {@code 1e-6} and relative
     * tolerance {@code 1e-6} (truncation error is O(h²) ≈ 1e-12, rounding about 1e-16/h ≈ 1e-10 of
     * the objective's magnitude).
     */
    public static void assertReferenceGradient(String what, double[] x, double[] analytic, int[] coords,
                                               DoubleSupplier objective) {
        double[] fd = centralDifferences(x, coords, 1e-6, objective);
        assertFiniteDifferencesAgree(what + " (float64 reference)", fd, analytic, coords, 1e-6);
    }

    /**
     * {@code count} distinct coordinates in {@code [0, length)}, always including the first and
     * the last, the rest drawn from {@code rnd}.
     */
    public static int[] sample(Random rnd, int length, int count) {
        Set<Integer> s = new LinkedHashSet<>();
        s.add(0);
        s.add(length - 1);
        while (s.size() < Math.min(count, length)) {
            s.add(rnd.nextInt(length));
        }
        return s.stream().mapToInt(Integer::intValue).toArray();
    }

    /** {@code Σ w[i]·x[i]} in float64. */
    public static double dot(double[] w, double[] x) {
        double s = 0;
        for (int i = 0; i < x.length; i++) {
            s += w[i] * x[i];
        }
        return s;
    }

    /** {@code Σ w[i]·x[i]} in float64. */
    public static double dot(double[] w, float[] x) {
        double s = 0;
        for (int i = 0; i < x.length; i++) {
            s += w[i] * x[i];
        }
        return s;
    }

    public static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    /** Element-wise sum {@code a + b} as a new array. */
    public static double[] plus(double[] a, double[] b) {
        double[] s = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            s[i] = a[i] + b[i];
        }
        return s;
    }

    /** Standard normal values scaled by {@code sigma}. */
    public static float[] gaussian(Random rnd, int n, double sigma) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (rnd.nextGaussian() * sigma);
        }
        return x;
    }

    /** Uniform values in {@code [lo, hi)}. */
    public static float[] uniform(Random rnd, int n, double lo, double hi) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (lo + (hi - lo) * rnd.nextDouble());
        }
        return x;
    }
}
