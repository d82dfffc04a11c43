package dev.anvil.engine.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

class TrainMetricsPortTest {

    @Test
    void trainServesPrometheusMetricsWhileItRuns(@TempDir Path dir) throws Exception {
        int port;
        try (ServerSocket probe = new ServerSocket(0)) {
            port = probe.getLocalPort();
        }
        Path log = dir.resolve("train.log");
        Process trainer = Cli.start(log, "train", "--preset", "tiny", "--steps", "100000", "--batch-size", "2", "--seq-len", "16",
                "--save-dir", dir.resolve("run").toString(), "--save-every", "0", "--eval-every", "0",
                "--metrics-port", Integer.toString(port));
        try {
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
            HttpRequest scrape = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build();
            Pattern step = Pattern.compile("(?m)^anvil_train_step(?:\\{[^}]*})? ([0-9.eE+]+)$");
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
            String body = "";
            while (System.nanoTime() < deadline) {
                if (!trainer.isAlive()) {
                    fail("the trainer exited early:\n" + Files.readString(log));
                }
                try {
                    HttpResponse<String> response = http.send(scrape, HttpResponse.BodyHandlers.ofString());
                    assertEquals(200, response.statusCode());
                    body = response.body();
                    Matcher m = step.matcher(body);
                    if (m.find() && Double.parseDouble(m.group(1)) >= 3) {
                        assertTrue(body.contains("anvil_train_loss"), body);
                        assertTrue(body.contains("anvil_tokens_per_second"), body);
                        return;
                    }
                } catch (java.net.ConnectException notYet) {
                    // the server starts once the model is built
                }
                Thread.sleep(50);
            }
            fail("no anvil_train_step >= 3 within 3 minutes; last scrape:\n" + body);
        } finally {
            trainer.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        }
    }
}
