-- findemo's fix of tansu 0.6.0's DeleteTopics (tests/testbed/README.md): the shipped
-- statement deletes every topic of the cluster that holds the named topic; this one
-- deletes the named topic only.
delete from topic
where topic.id in (
    select t.id
    from cluster c
    join topic t on t.cluster = c.id
    where c.name = $1
    and t.name = $2
);
