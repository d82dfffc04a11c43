package dev.anvil.bench.plot;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.ToDoubleFunction;

/**
 * Charts of a training run's {@code --metrics-out} JSONL: training and validation loss, and
 * tokens/s, against the step, stacked in one PNG.
 */
public final class MetricsChart {

    /** Size of each of the two stacked charts, in pixels. */
    public static final int WIDTH = 1200, CHART_HEIGHT = 450;

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * One line of the log.
     *
     * @param valLoss {@code NaN} where the step was not evaluated
     */
    record Point(int step, double loss, double tokensPerS, double valLoss) {
    }

    private MetricsChart() {
    }

    /**
     * Reads a metrics log. A resumed run appends the steps after its checkpoint again; the later
     * line of a step wins, as it is the one the final model went through.
     */
    static List<Point> read(Path jsonl) throws IOException {
        Map<Integer, Point> byStep = new TreeMap<>();
        List<String> lines = Files.readAllLines(jsonl, StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.isBlank()) {
                continue;
            }
            try {
                JsonNode node = JSON.readTree(line);
                Point p = new Point(required(node, "step").asInt(), required(node, "loss").asDouble(),
                        node.path("tokens_per_s").asDouble(Double.NaN),
                        node.hasNonNull("val_loss") ? node.get("val_loss").asDouble() : Double.NaN);
                byStep.put(p.step(), p);
            } catch (JacksonException | IllegalArgumentException e) {
                String why = e instanceof JacksonException j ? j.getOriginalMessage() : e.getMessage();
                throw new IOException(jsonl + " line " + (i + 1) + ": " + why
                        + "; expected a --metrics-out log of anvil train", e);
            }
        }
        if (byStep.isEmpty()) {
            throw new IOException(jsonl + " holds no steps; pass the --metrics-out file of anvil train");
        }
        return List.copyOf(byStep.values());
    }

    private static JsonNode required(JsonNode node, String field) {
        JsonNode value = node.get(field);
        if (value == null || !value.isNumber()) {
            throw new IllegalArgumentException("no number \"" + field + "\"");
        }
        return value;
    }

    /** Draws {@code points} as a PNG on {@code out}: {@link #WIDTH} by twice {@link #CHART_HEIGHT} pixels. */
    static void writePng(List<Point> points, String title, OutputStream out) throws IOException {
        XYChart loss = chart(title, "loss");
        line(loss, "train loss", points, Point::loss);
        XYSeries val = line(loss, "validation loss", points, Point::valLoss);
        if (val != null) {
            val.setMarker(SeriesMarkers.CIRCLE); // evaluations are sparse: show each one
        }
        XYChart speed = chart("", "tokens/s");
        line(speed, "tokens/s", points, Point::tokensPerS);
        speed.getStyler().setLegendVisible(false);
        BitmapEncoder.saveBitmap(List.of(loss, speed), 2, 1, out, BitmapEncoder.BitmapFormat.PNG);
    }

    private static XYChart chart(String title, String yTitle) {
        XYChart chart = new XYChartBuilder().width(WIDTH).height(CHART_HEIGHT).title(title).xAxisTitle("step")
                .yAxisTitle(yTitle).build();
        chart.getStyler().setMarkerSize(6);
        // Legend inside the plot: it takes no width, so the two charts' step axes nearly line up.
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNE);
        // XChart puts a step label every ~30 px whatever the spacing hint; slanted, they do not overlap.
        chart.getStyler().setXAxisLabelRotation(45);
        return chart;
    }

    /** Adds the steps where {@code value} is a number as a line; {@code null} if there are none. */
    private static XYSeries line(XYChart chart, String name, List<Point> points,
                                 ToDoubleFunction<Point> value) {
        List<Integer> x = new ArrayList<>();
        List<Double> y = new ArrayList<>();
        for (Point p : points) {
            double v = value.applyAsDouble(p);
            if (Double.isFinite(v)) {
                x.add(p.step());
                y.add(v);
            }
        }
        if (x.isEmpty()) {
            return null;
        }
        XYSeries series = chart.addSeries(name, x, y);
        series.setMarker(SeriesMarkers.NONE);
        return series;
    }
}
