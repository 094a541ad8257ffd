//! `hk instance`, `hk deployment`, `hk release`: names that only gather other commands. Alone, each lists
//! its commands, as nu's own `str` or `math` do, and `--help` shows them as subcommands.

use nu_plugin::{EngineInterface, EvaluatedCall, Plugin, PluginCommand};
use nu_protocol::{Category, Example, LabeledError, PipelineData, Record, Signature, Type, Value};

use crate::HkPlugin;

pub struct Group {
    pub name: &'static str,
    pub description: &'static str,
    /// `hk instance | get command`: the example, whose result is the group's commands.
    pub example: &'static str,
}

impl PluginCommand for Group {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        self.description
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name)
            .input_output_types(vec![(Type::Nothing, Type::table())])
            .category(Category::Custom("hk".into()))
    }

    fn examples(&self) -> Vec<Example<'_>> {
        let names = self.members(&HkPlugin).into_iter().map(|(name, _)| Value::test_string(name)).collect();
        vec![Example {
            example: self.example,
            description: "The commands it gathers",
            result: Some(Value::test_list(names)),
        }]
    }

    fn run(
        &self,
        plugin: &HkPlugin,
        _engine: &EngineInterface,
        call: &EvaluatedCall,
        _input: PipelineData,
    ) -> Result<PipelineData, LabeledError> {
        let span = call.head;
        let rows = self
            .members(plugin)
            .into_iter()
            .map(|(command, description)| {
                let mut row = Record::new();
                row.push("command", Value::string(command, span));
                row.push("description", Value::string(description, span));
                Value::record(row, span)
            })
            .collect();
        Ok(PipelineData::value(Value::list(rows, span), None))
    }
}

impl Group {
    /// (name, description) of the commands under this one, by name.
    fn members(&self, plugin: &HkPlugin) -> Vec<(String, String)> {
        let prefix = format!("{} ", self.name);
        let mut members: Vec<(String, String)> = plugin
            .commands()
            .iter()
            .filter(|c| c.name().starts_with(&prefix))
            .map(|c| (c.name().to_string(), c.description().to_string()))
            .collect();
        members.sort();
        members
    }
}
