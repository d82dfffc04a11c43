package dev.anvil.bench.scripts;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs every command of README.md's {@code sh} blocks, in order, as a newcomer would on a fresh clone: in an empty
 * directory (bin/ linked to this build, a generated corpus.txt), JAVA_HOME unset and a Java 17 first on the PATH.
 * Only sizes are shrunk ({@link #SHRINK}) so the whole README runs in about a minute, so the README and the command
 * line cannot drift apart. The {@code ./mvnw} commands are what runs this test (it runs after packaging); their
 * profiles and phases are checked rather than run.
 */
@Tag("scripts") // run after packaging: see bench/pom.xml
@Timeout(value = 8, unit = TimeUnit.MINUTES)
class ReadmeCommandsTest {

    /** README sizes to test sizes: the byte-level test model, a few steps, two ranks, JMH listing only. */
    private static final Map<String, String> SHRINK = new LinkedHashMap<>();

    static {
        SHRINK.put("--preset gpt2-\\S+", "--preset tiny");
        SHRINK.put("--batch-size \\d+", "--batch-size 2");
        SHRINK.put("--seq-len \\d+", "--seq-len 32");
        SHRINK.put("--steps \\d+", "--steps 2");
        SHRINK.put("--warmup \\d+", "--warmup 1");
        SHRINK.put("--nproc-per-node \\d+", "--nproc-per-node 2");
        SHRINK.put("^(bin/anvil prepare .*)$", "$1 --tokenizer bytes"); // text for the byte-level tiny
        SHRINK.put("^((bin/anvil|.* --) train(?!.*--steps)(?!.*--help).*)$", "$1 --steps 2");
        SHRINK.put("^(bin/jmh .*)$", "$1 -l");
    }

    private static final Pattern SH_BLOCK = Pattern.compile("(?ms)^```sh\\n(.*?)^```");
    private static final List<String> MAVEN_PHASES = List.of("clean", "compile", "test", "package", "verify");

    @TempDir
    Path clone;

    @Test
    void everyCommandInTheReadmeRunsAsWrittenWithOnlyItsSizesShrunk() throws Exception {
        Files.createSymbolicLink(clone.resolve("bin"), Shell.ROOT.resolve("bin"));
        Files.writeString(clone.resolve("corpus.txt"), corpus(new Random(16), 300_000));
        Path java17 = Shell.fakeJava(clone.resolve("java-17"), 17, true);
        Map<String, String> env = Map.of("PATH", java17.resolve("bin") + ":" + System.getenv("PATH"),
                "ANVIL_JAVA_SEARCH", Path.of(System.getProperty("java.home")).getParent().toString());

        Map<String, Shell.Result> ran = new LinkedHashMap<>();
        for (String command : commands(Files.readString(Shell.ROOT.resolve("README.md")))) {
            for (String step : command.split(" && ")) {
                if (step.startsWith("./mvnw ")) {
                    checkMaven(step);
                    continue;
                }
                String shrunk = shrink(step);
                Shell.Result result = Shell.bash(clone, env, 300, shrunk);
                assertEquals(0, result.exit(), "README: " + step + "\nran as: " + shrunk + "\n" + result);
                ran.put(step, result);
            }
        }

        for (String tool : List.of("bin/anvil train", "bin/anvil prepare", "bin/anvil eval", "bin/anvil generate",
                "bin/launch", "bin/anvil-certs", "bin/jmh", "bin/anvil bench-train", "bin/anvil plot")) {
            assertTrue(ran.keySet().stream().anyMatch(c -> c.startsWith(tool + " ")), "no README command ran " + tool
                    + ": " + ran.keySet());
        }
        String firstRun = ran.get("bin/anvil train").out();
        assertTrue(firstRun.matches("(?s).*\\nsample \\(more: bin/anvil generate -c runs/mini/step_\\d+\\):\\n.+"),
                "the first command's run ends with a sample:\n" + firstRun);
    }

    /** The commands of the README's sh blocks: comments dropped, continued lines joined. */
    static List<String> commands(String readme) {
        List<String> commands = new ArrayList<>();
        Matcher blocks = SH_BLOCK.matcher(readme);
        while (blocks.find()) {
            String joined = blocks.group(1).replaceAll("\\\\\\n\\s*", "");
            joined.lines().map(ReadmeCommandsTest::withoutComment).filter(l -> !l.isBlank()).forEach(commands::add);
        }
        return commands;
    }

    /** {@code line} up to a {@code #} that starts a shell comment (after a blank, outside quotes). */
    private static String withoutComment(String line) {
        char quote = 0;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (quote != 0) {
                quote = c == quote ? 0 : quote;
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (c == '#' && (i == 0 || Character.isWhitespace(line.charAt(i - 1)))) {
                return line.substring(0, i).strip();
            }
        }
        return line.strip();
    }

    static String shrink(String command) {
        String shrunk = command;
        for (Map.Entry<String, String> rule : SHRINK.entrySet()) {
            shrunk = shrunk.replaceAll(rule.getKey(), rule.getValue());
        }
        return shrunk;
    }

    /** A Maven command names only phases and profiles that exist. */
    private static void checkMaven(String command) throws Exception {
        List<String> poms;
        try (Stream<Path> files = Files.walk(Shell.ROOT, 2)) {
            poms = files.filter(p -> p.getFileName().toString().equals("pom.xml")).map(p -> {
                try {
                    return Files.readString(p);
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }).toList();
        }
        for (String word : command.substring("./mvnw ".length()).split(" +")) {
            if (word.startsWith("-P")) {
                String profile = "<id>" + word.substring(2) + "</id>";
                assertTrue(poms.stream().anyMatch(p -> p.contains(profile)), "README: " + command + ": no profile "
                        + word.substring(2));
            } else if (!word.startsWith("-")) {
                assertTrue(MAVEN_PHASES.contains(word), "README: " + command + ": unexpected phase " + word);
            }
        }
    }

    /** Paragraphs of English-like words, enough for a few batches of training and validation. */
    private static String corpus(Random random, int chars) {
        String[] words = ("the of and to in a is that for it as was with be by on not this are or from at which have"
                + " an they were their Parliament Commission Council report Member States European Union policy")
                .split(" ");
        StringBuilder text = new StringBuilder();
        while (text.length() < chars) {
            for (int w = 0, n = 30 + random.nextInt(60); w < n; w++) {
                text.append(w == 0 ? "" : " ").append(words[random.nextInt(words.length)]);
            }
            text.append(".\n\n");
        }
        return text.toString();
    }
}
