package drnflow.jvm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.CheckpointListener;

/**
 * Test-only: fails the task once, after a checkpoint has completed and after it has seen a number of
 * impressions, so the exactly-once test can restart the job from a checkpoint mid-stream. A marker file
 * (outside Flink state, so it survives the restart) makes it fail only once. Until it has failed it
 * also throttles the stream, so that a checkpoint completes while data is still flowing; after the
 * restart the stream runs at full speed.
 */
public final class FaultInjector extends RichMapFunction<SourceEvent, SourceEvent> implements CheckpointListener {
    private static final long serialVersionUID = 1L;

    private final long failAfter;
    private final String markerPath;
    private final long throttleMicros;
    private transient long seen;
    private transient boolean checkpointed;
    private transient boolean failedBefore;

    public FaultInjector(long failAfter, String markerPath, long throttleMicros) {
        this.failAfter = failAfter;
        this.markerPath = markerPath;
        this.throttleMicros = throttleMicros;
    }

    @Override
    public void open(OpenContext openContext) {
        failedBefore = !markerPath.isEmpty() && Files.exists(Path.of(markerPath));
    }

    @Override
    public SourceEvent map(SourceEvent e) throws Exception {
        seen++;
        if (throttleMicros > 0 && !failedBefore) {
            Thread.sleep(throttleMicros / 1000, (int) (throttleMicros % 1000) * 1000);
        }
        if (failAfter >= 0 && !failedBefore && checkpointed && seen >= failAfter) {
            Path marker = Path.of(markerPath);
            if (!Files.exists(marker)) {
                try {
                    Files.writeString(marker, "failed after " + seen + " impressions\n");
                } catch (IOException io) {
                    throw new IllegalStateException("cannot write fault marker " + marker, io);
                }
                throw new IllegalStateException("drnflow fault injection: failing after " + seen + " impressions");
            }
        }
        return e;
    }

    @Override
    public void notifyCheckpointComplete(long checkpointId) {
        checkpointed = true;
    }
}
