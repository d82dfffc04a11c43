package dev.anvil.engine.cli;

import dev.anvil.engine.launch.AllReduceBenchCommand;
import dev.anvil.engine.launch.LaunchCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ServiceLoader;

/**
 * {@code anvil}: the command line. Subcommands of the engine are built in; other modules (the
 * benchmarks) add theirs through {@link ServiceLoader} as {@link AnvilSubcommand}s.
 */
@Command(name = "anvil", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "Train GPT-style transformers on the CPU or CUDA GPUs.",
        subcommands = {TrainCommand.class, PrepareCommand.class, EvalCommand.class, GenerateCommand.class,
                InfoCommand.class, LaunchCommand.class, AllReduceBenchCommand.class,
                CommandLine.HelpCommand.class})
public final class AnvilMain implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit code. */
    public static int run(String... args) {
        return commandLine().execute(args);
    }

    static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new AnvilMain());
        for (AnvilSubcommand extra : ServiceLoader.load(AnvilSubcommand.class)) {
            cli.addSubcommand(extra);
        }
        cli.setExecutionExceptionHandler(AnvilMain::reportFailure);
        return cli;
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** One line that says what went wrong, not a stack trace (unless ANVIL_DEBUG is set). */
    private static int reportFailure(Exception e, CommandLine cli, CommandLine.ParseResult parsed) {
        Throwable cause = e instanceof UncheckedIOException u ? u.getCause() : e;
        String message = cause.getMessage() == null ? cause.toString() : cause.getMessage();
        if (cause instanceof IOException && !(cause instanceof java.nio.file.NoSuchFileException)
                && !message.contains(" ")) {
            message = cause.getClass().getSimpleName() + ": " + message;
        }
        if (cause instanceof java.nio.file.NoSuchFileException missing && missing.getReason() == null) {
            message = "no such file or directory: " + message; // else the reason says what was missing
        }
        cli.getErr().println(cli.getCommandSpec().qualifiedName() + ": error: " + message);
        if (System.getenv("ANVIL_DEBUG") != null) {
            e.printStackTrace(cli.getErr());
        }
        return 1;
    }
}
