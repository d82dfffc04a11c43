package dev.anvil.bench.compare;

import dev.anvil.bench.harness.BenchResult;
import dev.anvil.bench.harness.ResultFiles;
import dev.anvil.engine.cli.AnvilSubcommand;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code anvil bench-compare}: the key figures of several bench-train results side by side. */
@Command(name = "bench-compare", mixinStandardHelpOptions = true,
        description = {"Compare bench-train results side by side, with ratios against the first file."})
public final class BenchCompareCommand implements Callable<Integer>, AnvilSubcommand {

    @Parameters(arity = "1..*", paramLabel = "RESULT.json", description = "Files written by bench-train; the first is the baseline")
    List<Path> files;

    @Override
    public Integer call() throws IOException {
        List<BenchResult> results = new ArrayList<>();
        for (Path f : files) {
            results.add(ResultFiles.readJson(f));
        }
        print(ComparisonTable.of(files.stream().map(f -> f.getFileName().toString()).toList(), results), System.out);
        return 0;
    }

    private static void print(List<List<String>> rows, PrintStream out) {
        int columns = rows.getFirst().size();
        int[] width = new int[columns];
        for (List<String> row : rows) {
            for (int c = 0; c < columns; c++) {
                width[c] = Math.max(width[c], row.get(c).length());
            }
        }
        for (List<String> row : rows) {
            StringBuilder line = new StringBuilder();
            for (int c = 0; c < columns; c++) {
                String cell = row.get(c);
                // Labels left-aligned, figures right-aligned so that digits line up.
                line.append(c == 0 ? cell + " ".repeat(width[c] - cell.length())
                        : "  " + " ".repeat(width[c] - cell.length()) + cell);
            }
            out.println(line.toString().stripTrailing());
        }
    }
}
