package dev.anvil.kernels.cuda.driver;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Finds CUDA's shared libraries in an ordered list of directories:
 * {@value #ENV_DIR} (a {@code :}-separated list), {@code CUDA_HOME} and {@code CUDA_PATH}
 * ({@code lib64}, {@code lib}, {@code targets/x86_64-linux/lib}), {@code LD_LIBRARY_PATH},
 * {@code /usr/local/cuda}, the distribution's library directories, and the {@code nvidia/<package>/lib}
 * folders that pip's CUDA wheels install under Python's site-packages. The first directory holding
 * one of the wanted file names wins.
 */
public final class LibraryLocator {

    /** Environment variable naming the directories searched first. */
    public static final String ENV_DIR = "ANVIL_CUDA_LIB_DIR";

    private static final List<String> SYSTEM_DIRS = List.of(
            "/usr/local/cuda/lib64", "/usr/local/cuda/lib", "/usr/local/cuda/targets/x86_64-linux/lib",
            "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/lib/wsl/lib");
    private static final List<String> PYTHON_ROOTS = List.of("/usr/local", "/usr", "/opt/conda");

    private final List<Path> directories;

    /** A locator searching exactly {@code directories}, in order. */
    public LibraryLocator(List<Path> directories) {
        this.directories = List.copyOf(directories);
    }

    /** The locator for this process's environment. */
    public static LibraryLocator fromEnvironment() {
        return forEnvironment(System.getenv(), Path.of(System.getProperty("user.home", "/")));
    }

    /** The locator for environment {@code env} and home directory {@code home}. */
    public static LibraryLocator forEnvironment(Map<String, String> env, Path home) {
        Set<Path> dirs = new LinkedHashSet<>();
        addPathList(dirs, env.get(ENV_DIR));
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
        return new LibraryLocator(new ArrayList<>(dirs));
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

    /** The first file named one of {@code fileNames} (preferred first) in the first directory that has one. */
    public Optional<Path> find(List<String> fileNames) {
        for (Path dir : directories) {
            for (String name : fileNames) {
                Path candidate = dir.resolve(name);
                if (Files.isRegularFile(candidate)) {
                    return Optional.of(candidate);
                }
            }
        }
        return Optional.empty();
    }

    /** The error for a library found nowhere, listing every place searched. */
    public LibraryNotFoundException notFound(String what, List<String> fileNames) {
        StringBuilder sb = new StringBuilder()
                .append(what).append(" not found: looked for ").append(String.join(" or ", fileNames))
                .append(" in ");
        for (Path dir : directories) {
            sb.append(dir).append(", ");
        }
        sb.append("and the system loader's default paths; set ").append(ENV_DIR)
                .append(" to the directory that holds it");
        return new LibraryNotFoundException(sb.toString());
    }
}
