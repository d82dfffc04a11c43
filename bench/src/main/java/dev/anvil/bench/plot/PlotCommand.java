package dev.anvil.bench.plot;

import dev.anvil.engine.cli.AnvilSubcommand;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code anvil plot}: a PNG of a training run's loss and speed from its {@code --metrics-out} log. */
@Command(name = "plot", mixinStandardHelpOptions = true,
        description = {"Plot training and validation loss and tokens/s against the step, from the JSONL of train --metrics-out."})
public final class PlotCommand implements Callable<Integer>, AnvilSubcommand {

    @Parameters(paramLabel = "METRICS.jsonl", description = "The file written by anvil train --metrics-out")
    Path metrics;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE.png", description = "Where to write the chart (default: METRICS with .png)")
    Path output;

    @Override
    public Integer call() throws IOException {
        if (ModuleLayer.boot().findModule("java.desktop").isEmpty()) {
            throw new IllegalStateException("plot draws with java.desktop, which this Java runtime lacks (the GPU "
                    + "distribution's runtime leaves it out): copy the metrics file to a machine with a JDK and plot there");
        }
        // Render off-screen: training machines have no display. Must be set before AWT loads.
        System.setProperty("java.awt.headless", "true");
        List<MetricsChart.Point> points = MetricsChart.read(metrics);
        Path png = output != null ? output : defaultOutput(metrics);
        Path parent = png.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        try (OutputStream out = Files.newOutputStream(png)) {
            MetricsChart.writePng(points, metrics.getFileName().toString(), out);
        }
        System.out.printf("wrote %s: %d steps, %d..%d%n", png, points.size(), points.getFirst().step(),
                points.getLast().step());
        return 0;
    }

    private static Path defaultOutput(Path metrics) {
        String name = metrics.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return metrics.resolveSibling((dot > 0 ? name.substring(0, dot) : name) + ".png");
    }
}
