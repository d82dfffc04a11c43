package dev.anvil.bench.plot;

import dev.anvil.engine.cli.AnvilMain;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PlotCommandTest {

    @Test
    void drawsAPngOfTheLog(@TempDir Path dir) throws IOException {
        StringBuilder log = new StringBuilder();
        for (int step = 1; step <= 50; step++) {
            log.append(String.format(Locale.ROOT,
                    "{\"step\":%d,\"loss\":%.4f,\"lr\":0.001,\"grad_norm\":1.0,\"tokens_per_s\":%.1f,\"elapsed_s\":%.2f%s}%n",
                    step, 6.5 * Math.exp(-step / 20.0) + 1, 4000 + 10.0 * step, step * 0.1,
                    step % 10 == 0 ? String.format(Locale.ROOT, ",\"val_loss\":%.4f", 6.8 * Math.exp(-step / 20.0) + 1.1) : ""));
        }
        Path metrics = Files.writeString(dir.resolve("metrics.jsonl"), log);
        Path png = dir.resolve("out/run.png");

        assertEquals(0, AnvilMain.run("plot", metrics.toString(), "-o", png.toString()));

        BufferedImage image = ImageIO.read(png.toFile());
        assertNotNull(image, "a readable PNG");
        assertTrue(image.getWidth() >= 800 && image.getHeight() >= 600, image.getWidth() + "x" + image.getHeight());
    }

    @Test
    void aResumedRunsLaterLinesWin(@TempDir Path dir) throws IOException {
        Path metrics = Files.writeString(dir.resolve("m.jsonl"), """
                {"step":1,"loss":5.0,"tokens_per_s":10}
                {"step":2,"loss":4.0,"tokens_per_s":10}
                {"step":2,"loss":3.5,"tokens_per_s":11,"val_loss":3.9}

                {"step":3,"loss":3.0,"tokens_per_s":12}
                """);
        List<MetricsChart.Point> points = MetricsChart.read(metrics);
        assertEquals(3, points.size());
        assertEquals(new MetricsChart.Point(2, 3.5, 11, 3.9), points.get(1));
        assertTrue(Double.isNaN(points.get(2).valLoss()));
    }

    @Test
    void aBrokenLineIsNamed(@TempDir Path dir) throws IOException {
        Path metrics = Files.writeString(dir.resolve("m.jsonl"), "{\"step\":1,\"loss\":5.0}\n{\"loss\":4.0}\n");
        IOException e = org.junit.jupiter.api.Assertions.assertThrows(IOException.class, () -> MetricsChart.read(metrics));
        assertTrue(e.getMessage().contains("line 2") && e.getMessage().contains("\"step\""), e.getMessage());
    }
}
