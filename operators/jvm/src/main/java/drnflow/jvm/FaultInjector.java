package drnflow.jvm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.CheckpointListener;

/**
 * Test-only: fails the task `failures` times, each time after a checkpoint has completed since the
 * (re)start and after it has seen a number of impressions, so the tests can restart the job from a
 * checkpoint mid-stream, repeatedly. A marker file (outside Flink state, so it survives restarts) counts
 * the failures so far. Until the last failure it also throttles the stream, so that a checkpoint
 * completes while data is still flowing; after it the stream runs at full speed.
 */
public final class FaultInjector extends RichMapFunction<SourceEvent, SourceEvent> implements CheckpointListener {
    private static final long serialVersionUID = 1L;

    private final long failAfter;
    private final String markerPath;
    private final long throttleMicros;
    private final int failures;
    private transient long seen;
    private transient int failedSoFar;
    private transient boolean checkpointed;
    private transient boolean failedBefore;

    public FaultInjector(long failAfter, String markerPath, long throttleMicros, int failures) {
        this.failAfter = failAfter;
        this.markerPath = markerPath;
        this.throttleMicros = throttleMicros;
        this.failures = failures;
    }

    @Override
    public void open(OpenContext openContext) throws IOException {
        Path marker = markerPath.isEmpty() ? null : Path.of(markerPath);
        failedSoFar = marker != null && Files.exists(marker) ? Files.readAllLines(marker).size() : 0;
        failedBefore = failedSoFar >= failures;
    }

    @Override
    public SourceEvent map(SourceEvent e) throws Exception {
        seen++;
        if (throttleMicros > 0 && !failedBefore) {
            Thread.sleep(throttleMicros / 1000, (int) (throttleMicros % 1000) * 1000);
        }
        if (failAfter >= 0 && !failedBefore && checkpointed && seen >= failAfter) {
            Path marker = Path.of(markerPath);
            try {
                Files.writeString(marker, "failed after " + seen + " impressions\n",
                        java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
            } catch (IOException io) {
                throw new IllegalStateException("cannot write fault marker " + marker, io);
            }
            throw new IllegalStateException("drnflow fault injection: failure " + (failedSoFar + 1) + " of "
                    + failures + ", after " + seen + " impressions");
        }
        return e;
    }

    @Override
    public void notifyCheckpointComplete(long checkpointId) {
        checkpointed = true;
    }
}
