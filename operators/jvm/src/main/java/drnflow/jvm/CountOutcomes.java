package drnflow.jvm;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple4;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * Adds up the attribution subtasks' partial counts per (model_id, window_start, model_version,
 * explore_seed) and emits one row per key, once, when the watermark reaches window_end + attribution
 * window: every subtask sends its partials before it forwards that watermark.
 */
public final class CountOutcomes
        extends KeyedProcessFunction<Tuple4<String, Long, Long, Long>, PartialCounts, Row> {
    private static final long serialVersionUID = 1L;

    /** Field names of the rows handed to Python (jobs/minor_update.py reads them by name). */
    public static final String[] FIELDS = {
        "model_id", "window_start", "window_end", "model_version", "explore_seed", "impressions",
        "explore_wins", "current_wins", "ties", "no_clicks", "impression_offsets", "click_offsets",
    };

    private final long windowMs;
    private final long attributionMs;
    private transient ValueState<WindowCounts> counts;

    public CountOutcomes(long windowMs, long attributionMs) {
        this.windowMs = windowMs;
        this.attributionMs = attributionMs;
    }

    public static RowTypeInfo rowType() {
        return new RowTypeInfo(new TypeInformation<?>[] {
            Types.STRING, Types.LONG, Types.LONG, Types.LONG, Types.LONG, Types.LONG,
            Types.LONG, Types.LONG, Types.LONG, Types.LONG, Types.STRING, Types.STRING,
        }, FIELDS);
    }

    @Override
    public void open(OpenContext openContext) {
        counts = getRuntimeContext().getState(
                new ValueStateDescriptor<>("counts", TypeInformation.of(WindowCounts.class)));
    }

    @Override
    public void processElement(PartialCounts p, Context ctx, Collector<Row> out) throws Exception {
        WindowCounts c = counts.value();
        if (c == null) {
            c = new WindowCounts();
            ctx.timerService().registerEventTimeTimer(p.key.f1 + windowMs + attributionMs);
        }
        c.merge(p.counts);
        counts.update(c);
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<Row> out) throws Exception {
        WindowCounts c = counts.value();
        if (c == null) {
            return;
        }
        Tuple4<String, Long, Long, Long> k = ctx.getCurrentKey();
        out.collect(Row.of(k.f0, k.f1, k.f1 + windowMs, k.f2, k.f3, c.impressions, c.exploreWins,
                c.currentWins, c.ties, c.noClicks,
                WindowCounts.OffsetRanges.format(c.impressionPartitions, c.impressionFirst, c.impressionLast),
                WindowCounts.OffsetRanges.format(c.clickPartitions, c.clickFirst, c.clickLast)));
        counts.clear();
    }
}
