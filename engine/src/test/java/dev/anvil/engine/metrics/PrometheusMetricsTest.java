package dev.anvil.engine.metrics;

import dev.anvil.engine.train.StepMetrics;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PrometheusMetricsTest {

    @Test
    void servesTheLastStepOverHttp() throws Exception {
        try (PrometheusMetrics metrics = PrometheusMetrics.start(0)) {
            Map<String, Double> before = scrape(metrics.port());
            assertFalse(before.containsKey("anvil_train_loss"), "no training figures before the first step");
            assertTrue(before.get("anvil_jvm_memory_used_bytes{area=\"heap\"}") > 0);

            metrics.accept(new StepMetrics(1, 5.5, 1e-4, 2.0, 1000.0, 0.5, null));
            metrics.accept(new StepMetrics(2, 4.25, 2e-4, 1.5, 1200.0, 0.75, 4.5));
            metrics.accept(new StepMetrics(3, 4.0, 3e-4, 1.25, 1250.0, 1.0, null));
            metrics.stepPhase("forward", 0.125);
            metrics.allReduced(1 << 20, 0.5);
            metrics.deviceMemory(() -> 123_456_789L);

            Map<String, Double> after = scrape(metrics.port());
            assertEquals(4.0, after.get("anvil_train_loss"));
            assertEquals(4.5, after.get("anvil_validation_loss"), "the last evaluation stays until the next");
            assertEquals(3e-4, after.get("anvil_learning_rate"));
            assertEquals(1.25, after.get("anvil_gradient_norm"));
            assertEquals(3.0, after.get("anvil_train_step"));
            assertEquals(1250.0, after.get("anvil_tokens_per_second"));
            assertEquals(0.25, after.get("anvil_step_duration_seconds"));
            assertEquals(0.125, after.get("anvil_step_phase_seconds{phase=\"forward\"}"));
            assertEquals(1 << 20, after.get("anvil_allreduce_bytes_total"));
            assertEquals(2 * (1 << 20), after.get("anvil_allreduce_bytes_per_second"));
            assertEquals(123_456_789.0, after.get("anvil_device_memory_used_bytes"));
        }
    }

    @Test
    void aTakenPortSaysSo() throws Exception {
        try (PrometheusMetrics first = PrometheusMetrics.start(0)) {
            IOException e = assertThrows(IOException.class, () -> PrometheusMetrics.start(first.port()).close());
            assertTrue(e.getMessage().contains("port " + first.port()), e.getMessage());
        }
    }

    /** The text exposition format as "name{labels}" → value. */
    private static Map<String, Double> scrape(int port) throws IOException, InterruptedException {
        try (HttpClient http = HttpClient.newHttpClient()) {
            HttpResponse<String> response = http.send(
                    HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, response.statusCode());
            Map<String, Double> values = new HashMap<>();
            for (String line : response.body().split("\n")) {
                if (!line.isBlank() && !line.startsWith("#")) {
                    int space = line.lastIndexOf(' ');
                    values.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1)));
                }
            }
            return values;
        }
    }
}
