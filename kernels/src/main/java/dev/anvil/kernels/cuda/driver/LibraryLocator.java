package dev.anvil.kernels.cuda.driver;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Finds CUDA's shared libraries in an ordered list of directories:
 * {@value #ENV_DIR} (a {@code :}-separated list), {@code CUDA_HOME} and {@code CUDA_PATH}
 * ({@code lib64}, {@code lib}, {@code targets/x86_64-linux/lib}), {@code LD_LIBRARY_PATH},
 * {@code /usr/local/cuda}, the driver's {@code /usr/local/nvidia/lib64}, the distribution's library
 * directories, and the {@code nvidia/<package>/lib} folders that pip's CUDA wheels install under
 * Python's site-packages.
 *
 * <p>Some files of the right name must never be loaded, and are skipped: anything in a {@code stubs}
 * folder (CUDA's link-time stand-ins, whose {@code cuInit} fails with CUDA_ERROR_STUB_LIBRARY),
 * anything in a {@code compat} folder (the forward-compatibility driver, which works only with
 * particular driver branches) unless that folder is named in {@value #ENV_DIR}, and anything that
 * is not a 64-bit ELF file (32-bit copies, linker scripts).
 */
public final class LibraryLocator {

    /** Environment variable naming the directories searched first. */
    public static final String ENV_DIR = "ANVIL_CUDA_LIB_DIR";

    private static final List<String> SYSTEM_DIRS = List.of(
            "/usr/local/cuda/lib64", "/usr/local/cuda/lib", "/usr/local/cuda/targets/x86_64-linux/lib",
            "/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/lib/wsl/lib");
    private static final List<String> PYTHON_ROOTS = List.of("/usr/local", "/usr", "/opt/conda");

    private final List<Path> directories;
    private final Set<Path> named;

    /** A locator searching exactly {@code directories}, in order, none of them named by the user. */
    public LibraryLocator(List<Path> directories) {
        this(directories, Set.of());
    }

    /**
     * A locator searching {@code directories} in order; those in {@code named} were given by the
     * user ({@value #ENV_DIR}), so a {@code compat} folder among them is searched.
     */
    public LibraryLocator(List<Path> directories, Set<Path> named) {
        this.directories = List.copyOf(directories);
        this.named = Set.copyOf(named);
    }

    /** The locator for this process's environment. */
    public static LibraryLocator fromEnvironment() {
        return forEnvironment(System.getenv(), Path.of(System.getProperty("user.home", "/")));
    }

    /** The locator for environment {@code env} and home directory {@code home}. */
    public static LibraryLocator forEnvironment(Map<String, String> env, Path home) {
        Set<Path> named = new LinkedHashSet<>();
        addPathList(named, env.get(ENV_DIR));
        Set<Path> dirs = new LinkedHashSet<>(named);
        for (String var : List.of("CUDA_HOME", "CUDA_PATH")) {
            String root = env.get(var);
            if (root != null && !root.isBlank()) {
                for (String sub : List.of("lib64", "lib", "targets/x86_64-linux/lib")) {
                    dirs.add(Path.of(root, sub));
                }
            }
        }
        addPathList(dirs, env.get("LD_LIBRARY_PATH"));
        SYSTEM_DIRS.forEach(d -> dirs.add(Path.of(d)));
        List<Path> pythonRoots = new ArrayList<>();
        for (String var : List.of("VIRTUAL_ENV", "CONDA_PREFIX")) {
            String root = env.get(var);
            if (root != null && !root.isBlank()) {
                pythonRoots.add(Path.of(root));
            }
        }
        pythonRoots.add(home.resolve(".local"));
        PYTHON_ROOTS.forEach(r -> pythonRoots.add(Path.of(r)));
        pythonRoots.forEach(root -> addPipFolders(dirs, root));
        return new LibraryLocator(new ArrayList<>(dirs), named);
    }

    private static void addPathList(Set<Path> dirs, String list) {
        if (list == null) {
            return;
        }
        for (String part : list.split(":")) {
            if (!part.isBlank()) {
                dirs.add(Path.of(part));
            }
        }
    }

    /** Every existing {@code <root>/lib[64]/python3.x/{site,dist}-packages/nvidia/<package>/lib}. */
    private static void addPipFolders(Set<Path> dirs, Path root) {
        for (String lib : List.of("lib", "lib64")) {
            for (Path python : list(root.resolve(lib), "python3*")) {
                for (String packages : List.of("site-packages", "dist-packages")) {
                    for (Path pkg : list(python.resolve(packages).resolve("nvidia"), "*")) {
                        Path libDir = pkg.resolve("lib");
                        if (Files.isDirectory(libDir)) {
                            dirs.add(libDir);
                        }
                    }
                }
            }
        }
    }

    private static List<Path> list(Path dir, String glob) {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir, glob)) {
            stream.forEach(out::add);
        } catch (IOException | SecurityException e) {
            return List.of();  // an unreadable folder is simply not searched
        }
        out.sort(null);
        return out;
    }

    /** The directories searched, in order. */
    public List<Path> directories() {
        return directories;
    }

    /** The first file that {@link #candidates} lists. */
    public Optional<Path> find(List<String> fileNames) {
        return candidates(fileNames).stream().findFirst();
    }

    /**
     * Every loadable-looking file named one of {@code fileNames}, in search order: directory by
     * directory, and within one directory in the order of {@code fileNames} (preferred first).
     * Files that must not be loaded (see the class comment) are left out; {@link #skipped} says why.
     */
    public List<Path> candidates(List<String> fileNames) {
        List<Path> out = new ArrayList<>();
        survey(fileNames).forEach((p, why) -> {
            if (why.isEmpty()) {
                out.add(p);
            }
        });
        return out;
    }

    /** The files of those names that were found but left out, each with the reason. */
    public Map<Path, String> skipped(List<String> fileNames) {
        Map<Path, String> out = new LinkedHashMap<>();
        survey(fileNames).forEach((p, why) -> why.ifPresent(w -> out.put(p, w)));
        return out;
    }

    /** Every file found, in search order, with why it must not be loaded (empty when it may be). */
    private Map<Path, Optional<String>> survey(List<String> fileNames) {
        Map<Path, Optional<String>> out = new LinkedHashMap<>();
        for (Path dir : directories) {
            Optional<String> folderProblem = folderProblem(dir);
            for (String name : fileNames) {
                Path candidate = dir.resolve(name);
                if (Files.isRegularFile(candidate) && !out.containsKey(candidate)) {
                    out.put(candidate, folderProblem.or(() -> elfProblem(candidate)));
                }
            }
        }
        return out;
    }

    private Optional<String> folderProblem(Path dir) {
        for (Path part : dir) {
            String name = part.toString();
            if (name.equals("stubs")) {
                return Optional.of("a stub for linking, not a library to run with");
            }
            if (name.equals("compat") && !named.contains(dir)) {
                return Optional.of("a forward-compatibility driver; name its folder in " + ENV_DIR + " to use it");
            }
        }
        return Optional.empty();
    }

    /** Why {@code file} is not a 64-bit ELF shared object, or empty when it is one. */
    static Optional<String> elfProblem(Path file) {
        byte[] head = new byte[5];
        try (InputStream in = Files.newInputStream(file)) {
            if (in.readNBytes(head, 0, head.length) < head.length) {
                return Optional.of("too short to be a shared library");
            }
        } catch (IOException | SecurityException e) {
            return Optional.of("unreadable: " + e.getMessage());
        }
        if (head[0] != 0x7F || head[1] != 'E' || head[2] != 'L' || head[3] != 'F') {
            return Optional.of("not an ELF shared library (a linker script?)");
        }
        if (head[4] != 2) {
            return Optional.of("a 32-bit library");
        }
        return Optional.empty();
    }

    /** The error for a library found nowhere, listing every place searched. */
    public LibraryNotFoundException notFound(String what, List<String> fileNames) {
        return notFound(what, fileNames, List.of());
    }

    /**
     * The error for a library that could not be loaded: every place searched, every file skipped
     * and why, and every load that failed ({@code failures}, one entry each).
     */
    public LibraryNotFoundException notFound(String what, List<String> fileNames, List<String> failures) {
        StringBuilder sb = new StringBuilder()
                .append(what).append(" not found: looked for ").append(String.join(" or ", fileNames))
                .append(" in ");
        for (Path dir : directories) {
            sb.append(dir).append(", ");
        }
        sb.append("and the system loader's default paths");
        skipped(fileNames).forEach((p, why) -> sb.append("; skipped ").append(p).append(" (").append(why).append(')'));
        failures.forEach(f -> sb.append("; ").append(f));
        sb.append("; set ").append(ENV_DIR).append(" to the directory that holds it");
        return new LibraryNotFoundException(sb.toString());
    }
}
