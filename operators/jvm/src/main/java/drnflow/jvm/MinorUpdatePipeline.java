package drnflow.jvm;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

import org.apache.flink.api.common.eventtime.SerializableTimestampAssigner;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple4;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.sink.KafkaSinkBuilder;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.KafkaSourceBuilder;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.OffsetResetStrategy;
import org.apache.flink.kafka.shaded.org.apache.kafka.common.TopicPartition;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.DataStreamUtils;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.types.Row;
import org.apache.flink.util.OutputTag;

/**
 * Static builders PyFlink calls over py4j (jobs/minor_update.py): the per-event half of the
 * minor-update job (Kafka sources, decode, attribution, window counts, dead letters) in the JVM, and
 * the exactly-once Kafka sink for what the Python per-window step produces.
 */
public final class MinorUpdatePipeline {
    /** Dead letters from every stage (malformed, attribution rules). */
    public static final OutputTag<DeadLetterRecord> DEAD_LETTERS =
            new OutputTag<>("dead-letters", TypeInformation.of(DeadLetterRecord.class));

    /**
     * The impressions and clicks sources (every partition of each) keep their watermarks within
     * --max-source-drift of each other: the one ahead pauses. Without it, a job behind its topics reads
     * each at its own pace, one runs hours of event time ahead, and every click read before its impression
     * and every impression read before its outcome can be decided waits in state (unaligned soaks at 40k
     * events/s held 979k requests and 420k clicks for a horizon of 600k requests, or ran 12.5 h apart and
     * out of heap).
     *
     * <p>Unbounded jobs only. In Flink 2.2.1 a bounded job that fails after one source finished never
     * recovers with alignment on: the finished source is restored as finished, the coordinator still sends
     * it alignment events, and FinishedOperatorChain.dispatchOperatorEvent throws
     * UnsupportedOperationException, restart after restart (seen in test_minor_update's fault test).
     */
    static final String ALIGNMENT_GROUP = "drnflow-events";
    /**
     * How often sources report and learn the group's watermark. Flink 2.2 pauses a source that passes
     * min + drift until the next announcement (FLINK-37399, changed in 2.3), so a backlog is read at most
     * drift event-time per interval: 10 × the drift per second at 100 ms. On sparse event time that binds:
     * a soak log of 20 events an event-second caught up in 523 s with a 1 min drift, 332 s with 5 min
     * (README, "A soak test"), hence the default of 5 min, below the 30 min attribution window the state
     * holds anyway.
     */
    static final long ALIGNMENT_UPDATE_MS = 100;
    /**
     * The sources' periodic watermark interval when aligned, at most (Flink's default is 200 ms; the whole
     * job's interval, but only sources make watermarks on it, model-weights' idle ones). A source only
     * stops at the limit once its next watermark shows it past it, so it reads on for up to this long: on
     * test_source_alignment's backlog (30 s drift) the sources ran 95 s apart at 200 ms and 42 s at 50 ms.
     */
    static final long WATERMARK_INTERVAL_MS = 50;

    private MinorUpdatePipeline() {}

    /**
     * Builds sources to window rows and attaches the dead-letter sink. Returns the final per-window
     * rows (fields {@link CountOutcomes#FIELDS}), timestamped window_end + attribution window.
     */
    public static DataStream<Row> windowRows(StreamExecutionEnvironment env, Properties props) {
        JobSettings s = JobSettings.from(props);
        if (aligned(s)) {
            long interval = env.getConfig().getAutoWatermarkInterval();
            env.getConfig().setAutoWatermarkInterval(interval > 0 ? Math.min(interval, WATERMARK_INTERVAL_MS)
                    : WATERMARK_INTERVAL_MS);
        }
        SingleOutputStreamOperator<SourceEvent> impressions = decoded(env, s, s.impressionsTopic,
                AvroEventDeserializer.impressions(s.impressionSchema, s.previousImpressionSchema, s.maxEventTimeSkewMs),
                "impressions");
        SingleOutputStreamOperator<SourceEvent> clicks = decoded(env, s, s.clicksTopic,
                AvroEventDeserializer.clicks(s.clickSchema, s.maxEventTimeSkewMs), "clicks");
        DataStream<SourceEvent> impressionsIn = impressions;
        if (s.failAfterImpressions >= 0 || s.throttleMicrosPerImpression > 0) {
            impressionsIn = impressions
                    .map(new FaultInjector(s.failAfterImpressions, s.failMarkerPath, s.throttleMicrosPerImpression,
                            s.failures))
                    .name("fault-injector").uid("fault-injector");
        }
        long clicksGraceMs = s.bounded ? 0 : s.idlenessMs;
        DataStream<SourceEvent> joined = impressionsIn.keyBy(new RequestIdKey())
                .connect(clicks.keyBy(new RequestIdKey()))
                .transform("impressions-lead-watermarks", TypeInformation.of(SourceEvent.class),
                        new ImpressionsLeadWatermarks(clicksGraceMs))
                .uid("impressions-lead-watermarks");
        SingleOutputStreamOperator<PartialCounts> outcomes = DataStreamUtils
                .reinterpretAsKeyedStream(joined, new RequestIdKey(), Types.STRING)
                .transform("attribute-clicks", TypeInformation.of(PartialCounts.class), new AttributeClicksOperator(
                        new AttributeClicks(s.windowMs, s.attributionWindowMs, s.clickHorizonMs)))
                .uid("attribute-clicks");
        DataStream<PartialCounts> counted = outcomes;
        if (!s.probeDir.isEmpty()) {
            counted = outcomes.map(new ThroughputProbe<>(s.probeDir, "outcomes")).name("probe-outcomes");
        }
        DataStream<Row> rows = counted
                .keyBy(new WindowKey(), Types.TUPLE(Types.STRING, Types.LONG, Types.LONG, Types.LONG))
                .process(new CountOutcomes(s.windowMs, s.attributionWindowMs, s.pdgdBatchSchema), CountOutcomes.rowType())
                .name("count-outcomes").uid("count-outcomes");
        DataStream<DeadLetterRecord> dead = impressions.getSideOutput(DEAD_LETTERS)
                .union(clicks.getSideOutput(DEAD_LETTERS), outcomes.getSideOutput(DEAD_LETTERS));
        dead.sinkTo(deadLetterSink(s)).name("dead-letters-sink").uid("dead-letters-sink");
        return rows;
    }

    /** The bare baseline of `make bench`: the same sources and decoding, nothing after. */
    public static void decodeOnly(StreamExecutionEnvironment env, Properties props) {
        JobSettings s = JobSettings.from(props);
        DataStream<SourceEvent> impressions = decoded(env, s, s.impressionsTopic,
                AvroEventDeserializer.impressions(s.impressionSchema, s.previousImpressionSchema, s.maxEventTimeSkewMs),
                "impressions");
        DataStream<SourceEvent> clicks = decoded(env, s, s.clicksTopic,
                AvroEventDeserializer.clicks(s.clickSchema, s.maxEventTimeSkewMs), "clicks");
        impressions.union(clicks).sinkTo(new org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink<>())
                .name("discard");
    }

    /**
     * The ceiling of `make bench`: the same topics read as raw bytes (no decode), counted by the probes,
     * discarded. What the Kafka source and Flink's record path cost before any drnflow work.
     */
    public static void rawBytesOnly(StreamExecutionEnvironment env, Properties props) {
        JobSettings s = JobSettings.from(props);
        DataStream<Row> all = null;
        for (String[] topic : new String[][] {{s.impressionsTopic, "impressions"}, {s.clicksTopic, "clicks"}}) {
            KafkaSourceBuilder<Row> b = KafkaSource.<Row>builder()
                    .setBootstrapServers(s.bootstrap)
                    .setTopics(topic[0])
                    .setGroupId(s.groupId + "-raw")
                    .setDeserializer(new RawRecordDeserializer())
                    .setProperty("isolation.level", "read_committed")
                    .setStartingOffsets(OffsetsInitializer.earliest())
                    .setBounded(OffsetsInitializer.latest());
            withClientProperties(b, s);
            DataStream<Row> raw = env.fromSource(b.build(), WatermarkStrategy.noWatermarks(), topic[1]);
            if (!s.probeDir.isEmpty()) {
                raw = raw.map(new ThroughputProbe<>(s.probeDir, topic[1]), RawRecordDeserializer.rowType())
                        .name("probe-" + topic[1]);
            }
            all = all == null ? raw : all.union(raw);
        }
        all.sinkTo(new org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink<>()).name("discard");
    }

    /** MAJOR candidates for the Python learner: raw model-weights records from where Python read up to. */
    public static DataStream<Row> modelWeights(StreamExecutionEnvironment env, Properties props) {
        JobSettings s = JobSettings.from(props);
        Map<TopicPartition, Long> start = new HashMap<>();
        for (String part : s.modelWeightsStartOffsets.split(",")) {
            if (!part.isBlank()) {
                String[] po = part.split(":");
                start.put(new TopicPartition(s.modelWeightsTopic, Integer.parseInt(po[0])), Long.parseLong(po[1]));
            }
        }
        KafkaSourceBuilder<Row> b = KafkaSource.<Row>builder()
                .setBootstrapServers(s.bootstrap)
                .setTopics(s.modelWeightsTopic)
                .setGroupId(s.groupId + "-model-weights")
                .setStartingOffsets(OffsetsInitializer.offsets(start, OffsetResetStrategy.EARLIEST))
                .setDeserializer(new RawRecordDeserializer())
                .setProperty("isolation.level", "read_committed");
        withClientProperties(b, s);
        if (s.bounded) {
            b.setBounded(OffsetsInitializer.latest());
        }
        WatermarkStrategy<Row> wm = WatermarkStrategy.forGenerator(ctx -> new AlwaysIdleWatermarks<>());
        return env.fromSource(b.build(), wm, "model-weights").setParallelism(1).uid("model-weights-source");
    }

    /** Exactly-once sink for rows (topic, key, value) encoded by the Python per-window step. */
    public static void sinkRouted(DataStream<Row> rows, Properties props) {
        JobSettings s = JobSettings.from(props);
        KafkaSink<Row> sink = transactional(s, new RoutedBytesSerializer(), s.transactionalIdPrefix + "-out");
        rows.sinkTo(sink).name("outputs-sink").uid("outputs-sink");
    }

    private static KafkaSink<DeadLetterRecord> deadLetterSink(JobSettings s) {
        return transactional(s, new DeadLetterSerializer(s.deadLettersTopic, s.deadLetterSchema, s.jobName),
                s.transactionalIdPrefix + "-dl");
    }

    private static <T> KafkaSink<T> transactional(JobSettings s, KafkaRecordSerializationSchema<T> ser, String prefix) {
        KafkaSinkBuilder<T> b = KafkaSink.<T>builder()
                .setBootstrapServers(s.bootstrap)
                .setRecordSerializer(ser)
                .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                .setTransactionalIdPrefix(prefix)
                .setProperty("transaction.timeout.ms", Long.toString(s.transactionTimeoutMs));
        for (String key : s.kafkaClient.stringPropertyNames()) {
            b.setProperty(key, s.kafkaClient.getProperty(key));
        }
        return b.build();
    }

    /** The job's credentials (security.protocol, sasl.*) on a source. */
    private static void withClientProperties(KafkaSourceBuilder<?> b, JobSettings s) {
        for (String key : s.kafkaClient.stringPropertyNames()) {
            b.setProperty(key, s.kafkaClient.getProperty(key));
        }
    }

    private static SingleOutputStreamOperator<SourceEvent> decoded(StreamExecutionEnvironment env, JobSettings s,
            String topic, KafkaRecordDeserializationSchema<SourceEvent> deserializer, String name) {
        KafkaSourceBuilder<SourceEvent> b = KafkaSource.<SourceEvent>builder()
                .setBootstrapServers(s.bootstrap)
                .setTopics(topic)
                .setGroupId(s.groupId)
                .setDeserializer(deserializer)
                .setProperty("isolation.level", "read_committed");
        withClientProperties(b, s);
        if (s.bounded) {
            b.setStartingOffsets(OffsetsInitializer.earliest()).setBounded(OffsetsInitializer.latest());
        } else {
            b.setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST));
        }
        WatermarkStrategy<SourceEvent> wm = WatermarkStrategy
                .<SourceEvent>forBoundedOutOfOrderness(Duration.ofMillis(s.outOfOrdernessMs))
                .withTimestampAssigner(new EventTimeOf());
        if (s.idlenessMs > 0 && !s.bounded) {
            wm = wm.withIdleness(Duration.ofMillis(s.idlenessMs));
        }
        if (aligned(s)) {
            wm = wm.withWatermarkAlignment(ALIGNMENT_GROUP, Duration.ofMillis(s.maxSourceDriftMs),
                    Duration.ofMillis(ALIGNMENT_UPDATE_MS));
        }
        DataStream<SourceEvent> events = env.fromSource(b.build(), wm, name).uid(name + "-source");
        if (!s.probeDir.isEmpty()) {
            events = events.map(new ThroughputProbe<>(s.probeDir, name)).name("probe-" + name);
        }
        return events.process(new RouteMalformed()).name("route-malformed-" + name).uid("route-malformed-" + name);
    }

    /** Whether the sources are aligned (ALIGNMENT_GROUP): unbounded jobs with a drift. */
    private static boolean aligned(JobSettings s) {
        return s.maxSourceDriftMs > 0 && !s.bounded;
    }

    /** Event time of decoded records; MALFORMED ones have none and must not move the watermark. */
    static final class EventTimeOf implements SerializableTimestampAssigner<SourceEvent> {
        private static final long serialVersionUID = 1L;

        @Override
        public long extractTimestamp(SourceEvent e, long kafkaTimestamp) {
            return e.kind == SourceEvent.MALFORMED ? Long.MIN_VALUE : e.eventTime;
        }
    }

    static final class RequestIdKey implements KeySelector<SourceEvent, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(SourceEvent e) {
            return e.requestId;
        }
    }

    static final class WindowKey implements KeySelector<PartialCounts, Tuple4<String, Long, Long, Long>> {
        private static final long serialVersionUID = 1L;

        @Override
        public Tuple4<String, Long, Long, Long> getKey(PartialCounts p) {
            return p.key;
        }
    }
}
