package drnflow.jvm;

import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;

/** Sends MALFORMED source events to the dead-letter side output; decoded events go on to attribution. */
public final class RouteMalformed extends ProcessFunction<SourceEvent, SourceEvent> {
    private static final long serialVersionUID = 1L;

    @Override
    public void processElement(SourceEvent e, Context ctx, Collector<SourceEvent> out) {
        if (e.kind == SourceEvent.MALFORMED) {
            ctx.output(MinorUpdatePipeline.DEAD_LETTERS, DeadLetterRecord.of(e,
                    e.reason == null ? DeadLetterRecord.MALFORMED : e.reason, e.detail));
        } else {
            out.collect(e);
        }
    }
}
