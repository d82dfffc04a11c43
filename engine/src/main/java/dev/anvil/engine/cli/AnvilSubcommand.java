package dev.anvil.engine.cli;

/**
 * A subcommand contributed by another module, found with {@link java.util.ServiceLoader}. The
 * implementing class carries picocli's {@code @Command} annotation and implements
 * {@link java.util.concurrent.Callable Callable&lt;Integer&gt;} or {@link Runnable}.
 */
public interface AnvilSubcommand {
}
