// Memory this container can still take: the least of the kernel's MemAvailable and what its
// cgroup (v2 or v1) allows beyond what it uses, counting reclaimable page cache as free.
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

final class Memory {
    private Memory() {}

    // Bytes free, or -1 when nothing says.
    static long available() {
        long free = meminfo("MemAvailable");
        long cgroup = cgroupFree("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current",
                "/sys/fs/cgroup/memory.stat", "inactive_file");
        if (cgroup < 0) {
            cgroup = cgroupFree("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                    "/sys/fs/cgroup/memory/memory.usage_in_bytes",
                    "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file");
        }
        if (free < 0 || (cgroup >= 0 && cgroup < free)) {
            return cgroup;
        }
        return free;
    }

    private static long cgroupFree(String limitFile, String usageFile, String statFile,
            String cacheKey) {
        long limit = number(limitFile);
        long usage = number(usageFile);
        // cgroup v1 writes a huge number for "no limit"
        if (limit < 0 || usage < 0 || limit >= (1L << 60)) {
            return -1;
        }
        long cache = Math.max(stat(statFile, cacheKey), 0);
        return Math.max(limit - Math.max(usage - cache, 0), 0);
    }

    private static long number(String file) {
        try {
            return Long.parseLong(Files.readString(Path.of(file)).strip());
        } catch (IOException | NumberFormatException e) {
            return -1; // "max", or no such file
        }
    }

    private static long stat(String file, String key) {
        try {
            for (String line : Files.readAllLines(Path.of(file))) {
                String[] parts = line.split("\\s+");
                if (parts.length == 2 && parts[0].equals(key)) {
                    return Long.parseLong(parts[1]);
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    private static long meminfo(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith(key + ":")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }
}
