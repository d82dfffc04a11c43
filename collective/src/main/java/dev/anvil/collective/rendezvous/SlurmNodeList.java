package dev.anvil.collective.rendezvous;

import java.util.ArrayList;
import java.util.List;

/**
 * Parses Slurm's compressed host lists, e.g. {@code node[01-04,07],gpu5} or {@code rack[1-2]-n[01-02]}: ranges keep
 * the zero padding of their start, and several bracket groups in one name expand as a product.
 */
public final class SlurmNodeList {
    /** Refuse lists that would expand past this many hosts, rather than allocate without bound. */
    public static final int MAX_HOSTS = 1 << 20;

    private SlurmNodeList() {
    }

    /** All hosts, in Slurm's order. */
    public static List<String> expand(String nodeList) {
        List<String> hosts = new ArrayList<>();
        for (String item : splitTopLevel(nodeList)) {
            List<String> expanded = List.of("");
            int i = 0;
            while (i < item.length()) {
                int open = item.indexOf('[', i);
                String literal = open < 0 ? item.substring(i) : item.substring(i, open);
                expanded = product(expanded, List.of(literal));
                if (open < 0) {
                    break;
                }
                int close = item.indexOf(']', open);
                if (close < 0) {
                    throw invalid(nodeList, "unclosed '['");
                }
                expanded = product(expanded, ranges(nodeList, item.substring(open + 1, close)));
                i = close + 1;
            }
            hosts.addAll(expanded);
            if (hosts.size() > MAX_HOSTS) {
                throw invalid(nodeList, "expands to more than " + MAX_HOSTS + " hosts");
            }
        }
        if (hosts.isEmpty()) {
            throw invalid(nodeList, "no hosts");
        }
        return hosts;
    }

    /** The first host: where rank 0, and so the coordinator, runs under Slurm's default task placement. */
    public static String first(String nodeList) {
        String item = splitTopLevel(nodeList).getFirst();
        StringBuilder host = new StringBuilder();
        int i = 0;
        while (i < item.length()) {
            int open = item.indexOf('[', i);
            if (open < 0) {
                host.append(item, i, item.length());
                break;
            }
            int close = item.indexOf(']', open);
            if (close < 0) {
                throw invalid(nodeList, "unclosed '['");
            }
            String firstRange = item.substring(open + 1, close).split(",", -1)[0];
            host.append(item, i, open).append(firstRange.split("-", -1)[0]);
            i = close + 1;
        }
        if (host.isEmpty()) {
            throw invalid(nodeList, "no hosts");
        }
        return host.toString();
    }

    private static List<String> splitTopLevel(String nodeList) {
        if (nodeList == null || nodeList.isBlank()) {
            throw invalid(nodeList, "empty");
        }
        List<String> items = new ArrayList<>();
        int depth = 0;
        int start = 0;
        for (int i = 0; i < nodeList.length(); i++) {
            char c = nodeList.charAt(i);
            if (c == '[') {
                depth++;
            } else if (c == ']') {
                depth--;
            } else if (c == ',' && depth == 0) {
                items.add(nodeList.substring(start, i).strip());
                start = i + 1;
            }
            if (depth < 0 || depth > 1) {
                throw invalid(nodeList, "unbalanced brackets");
            }
        }
        items.add(nodeList.substring(start).strip());
        items.removeIf(String::isEmpty);
        if (items.isEmpty()) {
            throw invalid(nodeList, "no hosts");
        }
        return items;
    }

    private static List<String> ranges(String nodeList, String spec) {
        List<String> out = new ArrayList<>();
        for (String part : spec.split(",", -1)) {
            String[] bounds = part.strip().split("-", -1);
            if (bounds.length == 1 && !bounds[0].isEmpty()) {
                out.add(bounds[0]);
            } else if (bounds.length == 2 && bounds[0].matches("\\d+") && bounds[1].matches("\\d+")) {
                long lo = Long.parseLong(bounds[0]);
                long hi = Long.parseLong(bounds[1]);
                if (hi < lo || hi - lo >= MAX_HOSTS) {
                    throw invalid(nodeList, "bad range " + part);
                }
                for (long n = lo; n <= hi; n++) {
                    out.add(String.format("%0" + bounds[0].length() + "d", n));
                }
            } else {
                throw invalid(nodeList, "bad range '" + part + "'");
            }
        }
        return out;
    }

    private static List<String> product(List<String> prefixes, List<String> suffixes) {
        if ((long) prefixes.size() * suffixes.size() > MAX_HOSTS) {
            throw new IllegalArgumentException("host list expands to more than " + MAX_HOSTS + " hosts");
        }
        List<String> out = new ArrayList<>(prefixes.size() * suffixes.size());
        for (String p : prefixes) {
            for (String s : suffixes) {
                out.add(p + s);
            }
        }
        return out;
    }

    private static IllegalArgumentException invalid(String nodeList, String why) {
        return new IllegalArgumentException("cannot parse Slurm node list '" + nodeList + "': " + why);
    }
}
