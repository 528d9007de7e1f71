package drnflow.jvm;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/** Hands low-volume records (model-weights) to Python undecoded: rows (partition, offset, value bytes). */
public final class RawRecordDeserializer implements KafkaRecordDeserializationSchema<Row> {
    private static final long serialVersionUID = 1L;

    public static RowTypeInfo rowType() {
        return new RowTypeInfo(new TypeInformation<?>[] {
            Types.INT, Types.LONG, Types.PRIMITIVE_ARRAY(Types.BYTE),
        }, new String[] {"partition", "offset", "value"});
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<Row> out) {
        if (record.value() != null) {
            out.collect(Row.of(record.partition(), record.offset(), record.value()));
        }
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return rowType();
    }
}
