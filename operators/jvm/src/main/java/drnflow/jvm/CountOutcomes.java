package drnflow.jvm;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
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
 * window: every subtask sends its partials before it forwards that watermark. A row of PDGD impressions
 * also carries `pdgd_batch`: its clicked impressions as a PdgdBatch (schemas/pdgd_batch.avsc; empty bytes
 * when there are none), in whatever order the subtasks sent them: the Python step orders them by offset.
 */
public final class CountOutcomes
        extends KeyedProcessFunction<Tuple4<String, Long, Long, Long>, PartialCounts, Row> {
    private static final long serialVersionUID = 1L;

    /** Field names of the rows handed to Python (jobs/minor_update.py reads them by name). */
    public static final String[] FIELDS = {
        "model_id", "window_start", "window_end", "model_version", "explore_seed", "impressions",
        "explore_wins", "current_wins", "ties", "no_clicks", "impression_offsets", "click_offsets", "pdgd_batch",
    };

    private final long windowMs;
    private final long attributionMs;
    private final String pdgdBatchSchemaJson;
    private transient ValueState<WindowCounts> counts;
    private transient Schema batchSchema;
    private transient GenericDatumWriter<GenericRecord> batchWriter;

    public CountOutcomes(long windowMs, long attributionMs, String pdgdBatchSchemaJson) {
        this.windowMs = windowMs;
        this.attributionMs = attributionMs;
        this.pdgdBatchSchemaJson = pdgdBatchSchemaJson;
    }

    public static RowTypeInfo rowType() {
        return new RowTypeInfo(new TypeInformation<?>[] {
            Types.STRING, Types.LONG, Types.LONG, Types.LONG, Types.LONG, Types.LONG,
            Types.LONG, Types.LONG, Types.LONG, Types.LONG, Types.STRING, Types.STRING,
            Types.PRIMITIVE_ARRAY(Types.BYTE),
        }, FIELDS);
    }

    @Override
    public void open(OpenContext openContext) {
        counts = getRuntimeContext().getState(
                new ValueStateDescriptor<>("counts", TypeInformation.of(WindowCounts.class)));
        batchSchema = new Schema.Parser().parse(pdgdBatchSchemaJson);
        batchWriter = new GenericDatumWriter<>(batchSchema);
    }

    /** The PdgdBatch bytes of a window's PDGD samples (empty when there are none). */
    byte[] pdgdBatch(WindowCounts c) throws IOException {
        if (c.pdgdCount == 0) {
            return new byte[0];
        }
        Schema sampleSchema = batchSchema.getField("samples").schema().getElementType();
        List<GenericRecord> samples = new ArrayList<>(c.pdgdCount);
        for (int i = 0; i < c.pdgdCount; i++) {
            PdgdSample p = c.pdgd[i];
            GenericRecord r = new GenericData.Record(sampleSchema);
            r.put("partition", p.partition);
            r.put("offset", p.offset);
            r.put("impression", ByteBuffer.wrap(p.impression));
            List<Integer> clicked = new ArrayList<>(p.clicked.length);
            for (int pos : p.clicked) {
                clicked.add(pos);
            }
            r.put("clicked", clicked);
            samples.add(r);
        }
        GenericRecord batch = new GenericData.Record(batchSchema);
        batch.put("samples", samples);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(bytes, null);
        batchWriter.write(batch, enc);
        enc.flush();
        return bytes.toByteArray();
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
                WindowCounts.OffsetRanges.format(c.clickPartitions, c.clickFirst, c.clickLast), pdgdBatch(c)));
        counts.clear();
    }
}
