package dev.anvil.engine.train;

/** Thrown when a step's loss or gradient norm is not finite: training stops before the update. */
public final class TrainingDivergedException extends RuntimeException {

    private final int step;

    public TrainingDivergedException(int step, String message) {
        super(message);
        this.step = step;
    }

    /** The 1-based step whose loss or gradients were not finite. */
    public int step() {
        return step;
    }
}
