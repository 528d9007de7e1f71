package drnflow.jvm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;

/**
 * Benchmark probe: a pass-through that notes the wall-clock time of its first and last record and the
 * count, and writes them to a file when the (bounded) stream ends, so rates exclude job start-up.
 */
public final class ThroughputProbe<T> extends RichMapFunction<T, T> {
    private static final long serialVersionUID = 1L;

    private final String dir;
    private final String name;
    private transient long first;
    private transient long last;
    private transient long count;

    public ThroughputProbe(String dir, String name) {
        this.dir = dir;
        this.name = name;
    }

    @Override
    public void open(OpenContext openContext) {
        first = -1;
    }

    @Override
    public T map(T value) {
        long now = System.nanoTime();
        if (first < 0) {
            first = now;
        }
        last = now;
        count++;
        return value;
    }

    @Override
    public void close() throws IOException {
        int subtask = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
        long offset = System.currentTimeMillis() * 1_000_000L - System.nanoTime();
        Files.writeString(Path.of(dir, name + "-" + subtask + ".txt"),
                (first < 0 ? 0 : first + offset) + " " + (last + offset) + " " + count + "\n");
    }
}
